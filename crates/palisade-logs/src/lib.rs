//! Log decoders: bytes in, audit events and network flows out, with file and line on every error. (being built; see its issue).
