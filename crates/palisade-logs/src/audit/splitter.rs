//! Streaming record splitter: finds the byte range of each audit record in a JSON container
//! without parsing the records themselves.
//!
//! Hand-written because the containers must be streamed: a CloudTrail S3 object is one JSON
//! object whose `Records` array holds every event, and `serde_json` can only stream a sequence
//! of top-level values, not the elements of a nested array. Finding record boundaries is a
//! small state machine (depth, inside-string, escape) that runs far faster than parsing, which
//! lets the caller skip parsing records a rule-pack prefilter rules out.

use std::io::BufRead;

use memchr::{memchr, memchr2};

/// Where a record sits in its input, for error messages and findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct RecordPosition {
    /// Zero-based index of the record within its input.
    pub index: u64,
    /// One-based line on which the record starts.
    pub line: u64,
    /// Byte offset (in the decompressed input) at which the record starts.
    pub byte_offset: u64,
}

/// The container an input turned out to be, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerKind {
    /// `{"Records": [ … ]}`: a CloudTrail object as delivered to S3.
    CloudTrailObject,
    /// `[ … ]`: a JSON array of records.
    JsonArray,
    /// One JSON object per line.
    JsonLines,
    /// JSON objects one after another, each spanning several lines (pretty-printed).
    ConcatenatedJson,
}

/// One record's bytes and position; borrowed from the splitter until the next call.
#[derive(Debug)]
pub struct RawRecord<'splitter> {
    /// The record's JSON text, exactly as in the input.
    pub bytes: &'splitter [u8],
    /// Where the record starts.
    pub position: RecordPosition,
    /// The container the record came from.
    pub container: ContainerKind,
}

/// A structural problem in the container; the splitter stops after one, since it cannot know
/// where the next record starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SplitError {
    /// Where the problem was found.
    pub position: RecordPosition,
    /// What was wrong.
    pub message: String,
}

/// The read failed (I/O error or a corrupt compressed stream).
#[derive(Debug, thiserror::Error)]
pub enum SplitFailure {
    /// The container is malformed at a known position.
    #[error(transparent)]
    Structure(SplitError),
    /// Reading the input failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SplitState {
    Start,
    /// Inside a JSON array; `first` until the first element or `]` was seen.
    Array {
        first: bool,
    },
    Lines,
    Concatenated,
    Done,
}

/// Largest record accepted; a longer one is reported and ends the input (no resync point).
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;
const READ_CHUNK_BYTES: usize = 256 * 1024;

/// Splits a byte stream into raw JSON records, holding at most one record plus one read chunk
/// in memory.
pub struct RecordSplitter<R> {
    reader: R,
    buffer: Vec<u8>,
    /// Start of unconsumed data in `buffer`.
    start: usize,
    /// End of valid data in `buffer`.
    end: usize,
    at_eof: bool,
    /// Offset in the input of `buffer[0]`.
    buffer_offset: u64,
    /// Newlines before `buffer[line_mark]` have been counted into `line`.
    line_mark: usize,
    line: u64,
    next_index: u64,
    state: SplitState,
    container: Option<ContainerKind>,
}

impl<R: BufRead> RecordSplitter<R> {
    /// Wraps a reader; the container is detected on the first call to [`Self::next_record`].
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            buffer: Vec::new(),
            start: 0,
            end: 0,
            at_eof: false,
            buffer_offset: 0,
            line_mark: 0,
            line: 1,
            next_index: 0,
            state: SplitState::Start,
            container: None,
        }
    }

    /// Returns the detected container, once the first record (or the end) has been reached.
    pub fn container(&self) -> Option<ContainerKind> {
        self.container
    }

    /// Bytes consumed so far (for progress reporting).
    pub fn bytes_consumed(&self) -> u64 {
        self.buffer_offset + self.start as u64
    }

    /// Returns the next record, `None` at the end, or the structural error that ended the input.
    pub fn next_record(&mut self) -> Option<Result<RawRecord<'_>, SplitFailure>> {
        match self.advance() {
            Ok(Some((record_start, record_end))) => {
                let position = self.position_at(record_start);
                self.next_index += 1;
                Some(Ok(RawRecord {
                    bytes: &self.buffer[record_start..record_end],
                    position,
                    container: self.container.unwrap_or(ContainerKind::JsonLines),
                }))
            }
            Ok(None) => None,
            Err(failure) => {
                self.state = SplitState::Done;
                Some(Err(failure))
            }
        }
    }

    fn position_at(&mut self, at: usize) -> RecordPosition {
        if at > self.line_mark {
            self.line +=
                memchr::memchr_iter(b'\n', &self.buffer[self.line_mark..at]).count() as u64;
            self.line_mark = at;
        }
        RecordPosition {
            index: self.next_index,
            line: self.line,
            byte_offset: self.buffer_offset + at as u64,
        }
    }

    fn structure_error(&mut self, at: usize, message: impl Into<String>) -> SplitFailure {
        let position = self.position_at(at.min(self.end));
        SplitFailure::Structure(SplitError {
            position,
            message: message.into(),
        })
    }

    /// Reads more input, keeping `buffer[start..end]`. Returns false at end of input.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.at_eof {
            return Ok(false);
        }
        if self.start > 0 {
            // Count the newlines that are about to be discarded, then shift the live data.
            if self.start > self.line_mark {
                self.line += memchr::memchr_iter(b'\n', &self.buffer[self.line_mark..self.start])
                    .count() as u64;
            }
            self.buffer.copy_within(self.start..self.end, 0);
            self.buffer_offset += self.start as u64;
            self.end -= self.start;
            self.line_mark = 0;
            self.start = 0;
        }
        if self.buffer.len() < self.end + READ_CHUNK_BYTES {
            self.buffer.resize(self.end + READ_CHUNK_BYTES, 0);
        }
        loop {
            match self.reader.read(&mut self.buffer[self.end..]) {
                Ok(0) => {
                    self.at_eof = true;
                    return Ok(false);
                }
                Ok(read) => {
                    self.end += read;
                    return Ok(true);
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
        }
    }

    /// Skips whitespace (and a UTF-8 byte-order mark at the very start); returns the next
    /// significant byte without consuming it, or `None` at the end of input.
    fn peek_significant(&mut self) -> std::io::Result<Option<u8>> {
        loop {
            while self.start < self.end {
                let byte = self.buffer[self.start];
                if byte.is_ascii_whitespace() {
                    self.start += 1;
                } else if byte == 0xEF
                    && self.buffer_offset == 0
                    && self.start == 0
                    && self.end >= 3
                    && self.buffer[..3] == [0xEF, 0xBB, 0xBF]
                {
                    self.start += 3;
                } else {
                    return Ok(Some(byte));
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    fn advance(&mut self) -> Result<Option<(usize, usize)>, SplitFailure> {
        loop {
            match self.state {
                SplitState::Done => return Ok(None),
                SplitState::Start => self.detect_container()?,
                SplitState::Array { first } => return self.next_array_element(first),
                SplitState::Lines => return self.next_line(),
                SplitState::Concatenated => {
                    let Some(_) = self.peek_significant()? else {
                        self.state = SplitState::Done;
                        return Ok(None);
                    };
                    // Scanning may compact the buffer, moving `start`: read it afterwards.
                    let record_end = self.scan_value()?;
                    let record_start = self.start;
                    self.start = record_end;
                    return Ok(Some((record_start, record_end)));
                }
            }
        }
    }

    fn detect_container(&mut self) -> Result<(), SplitFailure> {
        let Some(first) = self.peek_significant()? else {
            self.state = SplitState::Done;
            return Ok(());
        };
        match first {
            b'[' => {
                self.start += 1;
                self.container = Some(ContainerKind::JsonArray);
                self.state = SplitState::Array { first: true };
            }
            b'{' => {
                if self.enter_records_array()? {
                    self.container = Some(ContainerKind::CloudTrailObject);
                    self.state = SplitState::Array { first: true };
                } else {
                    // Not a CloudTrail object: a stream of objects. One line each is JSON Lines
                    // (split on newlines, so a broken line costs only itself); otherwise they
                    // are pretty-printed and split structurally.
                    // Scanning may compact the buffer, moving `start`: read it afterwards.
                    let record_end = self.scan_value()?;
                    let record_start = self.start;
                    let spans_lines =
                        memchr(b'\n', &self.buffer[record_start..record_end]).is_some();
                    if spans_lines {
                        self.container = Some(ContainerKind::ConcatenatedJson);
                        self.state = SplitState::Concatenated;
                    } else {
                        self.container = Some(ContainerKind::JsonLines);
                        self.state = SplitState::Lines;
                    }
                }
            }
            _ => {
                // Neither array nor object first: treat as JSON Lines so each bad line is
                // reported on its own.
                self.container = Some(ContainerKind::JsonLines);
                self.state = SplitState::Lines;
            }
        }
        Ok(())
    }

    /// With `buffer[start] == b'{'`, checks whether the object's first key is `Records` holding
    /// an array; if so consumes up to and including the `[`.
    fn enter_records_array(&mut self) -> Result<bool, SplitFailure> {
        const PREFIX_LIMIT: usize = 4096;
        loop {
            let window = &self.buffer[self.start..self.end];
            let mut cursor = 1;
            let skip_ws = |cursor: &mut usize| {
                while *cursor < window.len() && window[*cursor].is_ascii_whitespace() {
                    *cursor += 1;
                }
            };
            skip_ws(&mut cursor);
            let needed = b"\"Records\"";
            let complete_prefix = (|| {
                if window.len() < cursor + needed.len() {
                    return None;
                }
                if &window[cursor..cursor + needed.len()] != needed {
                    return Some(None);
                }
                cursor += needed.len();
                skip_ws(&mut cursor);
                if cursor >= window.len() {
                    return None;
                }
                if window[cursor] != b':' {
                    return Some(None);
                }
                cursor += 1;
                skip_ws(&mut cursor);
                if cursor >= window.len() {
                    return None;
                }
                if window[cursor] != b'[' {
                    return Some(None);
                }
                Some(Some(cursor + 1))
            })();
            match complete_prefix {
                Some(Some(array_body)) => {
                    self.start += array_body;
                    return Ok(true);
                }
                Some(None) => return Ok(false),
                None => {
                    if window.len() > PREFIX_LIMIT || !self.fill()? {
                        return Ok(false);
                    }
                }
            }
        }
    }

    fn next_array_element(&mut self, first: bool) -> Result<Option<(usize, usize)>, SplitFailure> {
        let Some(mut next) = self.peek_significant()? else {
            let at = self.end;
            return Err(self.structure_error(at, "input ends inside the JSON array (missing `]`)"));
        };
        if !first {
            match next {
                b',' => {
                    self.start += 1;
                    let Some(after_comma) = self.peek_significant()? else {
                        let at = self.end;
                        return Err(
                            self.structure_error(at, "input ends after `,` in the JSON array")
                        );
                    };
                    next = after_comma;
                }
                b']' => {
                    // The end of the array; whatever follows (other keys of a CloudTrail
                    // object, the closing brace) holds no records.
                    self.start += 1;
                    self.state = SplitState::Done;
                    return Ok(None);
                }
                other => {
                    let at = self.start;
                    return Err(self.structure_error(
                        at,
                        format!(
                            "expected `,` or `]` between records, found `{}`",
                            other as char
                        ),
                    ));
                }
            }
        } else if next == b']' {
            self.start += 1;
            self.state = SplitState::Done;
            return Ok(None);
        }
        let _ = next;
        let record_end = self.scan_value()?;
        let record_start = self.start;
        self.start = record_end;
        self.state = SplitState::Array { first: false };
        Ok(Some((record_start, record_end)))
    }

    fn next_line(&mut self) -> Result<Option<(usize, usize)>, SplitFailure> {
        loop {
            let mut searched_to = self.start;
            let newline = loop {
                if let Some(found) = memchr(b'\n', &self.buffer[searched_to..self.end]) {
                    break Some(searched_to + found);
                }
                searched_to = self.end;
                if self.end - self.start > MAX_RECORD_BYTES {
                    let at = self.start;
                    return Err(
                        self.structure_error(at, "line longer than the 64 MiB record limit")
                    );
                }
                let shift = self.start;
                if !self.fill()? {
                    break None;
                }
                searched_to -= shift;
            };
            let line_start = self.start;
            let line_end = newline.unwrap_or(self.end);
            self.start = newline.map_or(self.end, |at| at + 1);
            let content = trim_ascii(&self.buffer[line_start..line_end]);
            if content.is_empty() {
                if newline.is_none() {
                    self.state = SplitState::Done;
                    return Ok(None);
                }
                continue;
            }
            let leading = self.buffer[line_start..line_end]
                .iter()
                .take_while(|byte| byte.is_ascii_whitespace())
                .count();
            let record_start = line_start + leading;
            return Ok(Some((record_start, record_start + content.len())));
        }
    }

    /// Finds the end of the JSON value starting at `buffer[start]` (reading more as needed) and
    /// returns its exclusive end index. Strings are skipped with `memchr2`, which is where most
    /// of an audit record's bytes are.
    fn scan_value(&mut self) -> Result<usize, SplitFailure> {
        let mut depth: usize = 0;
        let mut in_string = false;
        // Offset from `start` of the next byte to look at; survives buffer compaction.
        let mut offset = 0usize;
        let opening = self.buffer[self.start];
        let is_scalar = !matches!(opening, b'{' | b'[' | b'"');
        loop {
            let mut index = self.start + offset;
            while index < self.end {
                if in_string {
                    match memchr2(b'"', b'\\', &self.buffer[index..self.end]) {
                        Some(found) => {
                            index += found;
                            if self.buffer[index] == b'\\' {
                                if index + 1 >= self.end {
                                    break; // the escaped byte is not read yet
                                }
                                index += 2;
                            } else {
                                in_string = false;
                                index += 1;
                                if depth == 0 {
                                    return Ok(index);
                                }
                            }
                        }
                        None => index = self.end,
                    }
                    continue;
                }
                let byte = self.buffer[index];
                if is_scalar {
                    if matches!(byte, b',' | b']' | b'}') || byte.is_ascii_whitespace() {
                        return Ok(index);
                    }
                    index += 1;
                    continue;
                }
                match byte {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return Ok(index + 1);
                        }
                    }
                    _ => {}
                }
                index += 1;
            }
            offset = index - self.start;
            if offset > MAX_RECORD_BYTES {
                let at = self.start;
                return Err(self.structure_error(at, "record longer than the 64 MiB limit"));
            }
            if !self.fill()? {
                if is_scalar {
                    return Ok(self.end);
                }
                let at = self.start;
                return Err(self.structure_error(
                    at,
                    "input ends inside a record (truncated or unbalanced JSON)",
                ));
            }
        }
    }
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(
        input: &[u8],
    ) -> (
        Option<ContainerKind>,
        Vec<(String, RecordPosition)>,
        Vec<String>,
    ) {
        // Seven bytes per read: every record straddles buffer refills and compactions.
        struct Trickle<'input>(&'input [u8]);
        impl std::io::Read for Trickle<'_> {
            fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
                let count = self.0.len().min(buffer.len()).min(7);
                buffer[..count].copy_from_slice(&self.0[..count]);
                self.0 = &self.0[count..];
                Ok(count)
            }
        }
        let reader = std::io::BufReader::with_capacity(7, Trickle(input));
        let mut splitter = RecordSplitter::new(reader);
        let mut records = Vec::new();
        let mut errors = Vec::new();
        while let Some(next) = splitter.next_record() {
            match next {
                Ok(record) => records.push((
                    String::from_utf8_lossy(record.bytes).into_owned(),
                    record.position,
                )),
                Err(error) => errors.push(error.to_string()),
            }
        }
        (splitter.container(), records, errors)
    }

    #[test]
    fn cloudtrail_object_records_are_streamed_one_by_one() {
        let input = br#"{"Records":[{"eventName":"A","x":"}]\"{"},
  {"eventName":"B","nested":{"k":[1,2]}}]}"#;
        let (container, records, errors) = split_all(input);
        assert_eq!(container, Some(ContainerKind::CloudTrailObject));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].0, r#"{"eventName":"A","x":"}]\"{"}"#);
        assert_eq!(records[1].0, r#"{"eventName":"B","nested":{"k":[1,2]}}"#);
        assert_eq!(records[1].1.line, 2);
        assert_eq!(records[1].1.index, 1);
    }

    #[test]
    fn json_lines_keep_going_after_a_broken_line() {
        let input = b"{\"a\":1}\n{\"a\":\"unterminated}\n\n{\"a\":3}\n";
        let (container, records, errors) = split_all(input);
        assert_eq!(container, Some(ContainerKind::JsonLines));
        assert!(errors.is_empty());
        let lines: Vec<u64> = records.iter().map(|(_, position)| position.line).collect();
        assert_eq!(lines, vec![1, 2, 4]);
        assert_eq!(records[1].0, "{\"a\":\"unterminated}");
    }

    #[test]
    fn arrays_and_pretty_printed_objects_are_split_structurally() {
        let (container, records, _) = split_all(b" [ {\"a\":1} , {\"b\":[2]} ] ");
        assert_eq!(container, Some(ContainerKind::JsonArray));
        assert_eq!(records.len(), 2);
        let (container, records, _) = split_all(b"{\n \"a\": 1\n}\n{\n \"b\": 2\n}\n");
        assert_eq!(container, Some(ContainerKind::ConcatenatedJson));
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].1.line, 4);
    }

    #[test]
    fn truncated_array_reports_its_position_and_stops() {
        let (_, records, errors) = split_all(b"{\"Records\":[{\"a\":1},{\"b\":");
        assert_eq!(records.len(), 1);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("truncated"), "{errors:?}");
    }

    #[test]
    fn garbage_between_elements_is_a_structure_error() {
        let (_, records, errors) = split_all(b"[{\"a\":1} x {\"b\":2}]");
        assert_eq!(records.len(), 1);
        assert!(errors[0].contains("expected `,` or `]`"), "{errors:?}");
    }

    #[test]
    fn empty_inputs_have_no_records() {
        for input in [&b""[..], b"  \n", b"[]", b"{\"Records\":[]}"] {
            let (_, records, errors) = split_all(input);
            assert!(records.is_empty() && errors.is_empty(), "{input:?}");
        }
    }
}
