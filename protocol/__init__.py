"""Every message between the CLI, the supervisor and the user processes.

``protocol.messages`` defines them as msgspec tagged Structs, one union per direction;
``protocol.codec`` is each direction's encoder/decoder pair; ``protocol.vocab`` names the
strings a phase, state, basis or error kind may be; ``protocol.exitcodes`` is the
child-to-parent exit status protocol; ``protocol.addresses`` names the ZeroMQ endpoints.
"""

from protocol.messages import PROTOCOL_VERSION

__all__ = ["PROTOCOL_VERSION"]
