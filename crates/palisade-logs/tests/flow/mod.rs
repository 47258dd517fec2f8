//! Flow-log decoders: real and hand-made sample files (one test per file), and generated records
//! written in every format and read back.

mod generated;
mod samples;
