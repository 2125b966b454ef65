"""Every message between the CLI, the supervisor and the user processes.

``protocol.messages`` defines them as msgspec tagged Structs; ``protocol.codec`` is the one
encoder/decoder pair; ``protocol.exitcodes`` is the child-to-parent exit status protocol;
``protocol.addresses`` names the ZeroMQ endpoints.
"""

from protocol.codec import decode, encode
from protocol.messages import PROTOCOL_VERSION

__all__ = ["PROTOCOL_VERSION", "decode", "encode"]
