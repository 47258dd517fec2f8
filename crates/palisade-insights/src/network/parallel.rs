//! One stream of flows over several cores, with exactly the findings one thread gives.
//!
//! [`ParallelScan`] reads AWS VPC text in blocks of whole lines, cuts each block into pieces and
//! decodes the pieces on all threads, working out there what every detector asks about a flow
//! (internal or not, reply or not, the intel entry of each address). The detectors then run as
//! shards (see `Shard` in the parent module): one state per thread, each owning the keys of its
//! share of the addresses, each reading every flow of the block in input order. Since every shard
//! sees every flow, all shards keep the same watermark and close the same windows at the same
//! flows; a finding is tagged with the watermark of the closing that produced it, and the
//! findings of all shards merged in (tag, end of window, type, id) order are the findings of a
//! single state, in the same order. Other formats are decoded on the calling thread and
//! detected the same way.
//!
//! Pure computation on rayon's pool: the reader is the only I/O, and it is the caller's. The
//! calling thread reads (and decompresses) the next block of AWS text while the pool runs the
//! current one, so on two cores the read is not a serial step of every block; the reader never
//! leaves the calling thread (it need not be `Send`).

use std::io::{self, BufRead, Read};

use palisade_logs::flow::aws::{AwsLayout, decode_aws_chunk};
use palisade_logs::flow::{FlowDecodeSummary, FlowFormat, decode_flows_compact, resolve_format};
use palisade_model::flow::CompactFlow;
use rayon::prelude::*;

use super::finding::{DetectorKind, NetworkFinding};
use super::{
    DetectorStats, FlowContext, NetworkDetectorState, NetworkDetectors, ThreatIntel, finding_order,
};

/// Bytes of text read and decoded per round: big enough that the two hand-overs per round cost
/// nothing, small enough that the prepared flows of a round stay in the caches.
const BLOCK_BYTES: usize = 1 << 20;
/// Flows per round when the caller hands flows (not text) over.
const BLOCK_FLOWS: usize = 8192;
/// Pieces per thread a block is cut into, so a thread that got the slower pieces is helped.
const PIECES_PER_THREAD: usize = 4;

/// One shard's state and what it found in the current round.
struct ShardRun {
    state: NetworkDetectorState,
    findings: Vec<NetworkFinding>,
    /// (index of the first finding of a closing in `findings`, watermark of that closing).
    closings: Vec<(usize, i64)>,
}

/// Scans flows with all detectors on several threads. See the module documentation.
pub struct ParallelScan<'run> {
    detectors: &'run NetworkDetectors,
    intel: &'run ThreatIntel,
    shards: Vec<ShardRun>,
    threads: usize,
    /// Prepared flows of the current round, one vector per piece (kept for their capacity).
    prepared: Vec<Vec<FlowContext>>,
    findings: Vec<NetworkFinding>,
    flows: u64,
}

impl<'run> ParallelScan<'run> {
    /// A scan on `threads` threads (at least one; rayon's pool does the work, so more threads
    /// than the pool has only adds shards).
    pub fn new(
        detectors: &'run NetworkDetectors,
        intel: &'run ThreatIntel,
        threads: usize,
    ) -> Self {
        let threads = threads.clamp(1, 64);
        let shards = detectors
            .new_shard_states(threads as u32)
            .into_iter()
            .map(|state| ShardRun {
                state,
                findings: Vec::new(),
                closings: Vec::new(),
            })
            .collect();
        Self {
            detectors,
            intel,
            shards,
            threads,
            prepared: Vec::new(),
            findings: Vec::new(),
            flows: 0,
        }
    }

    /// A scan on as many threads as rayon's pool has.
    pub fn with_all_threads(detectors: &'run NetworkDetectors, intel: &'run ThreatIntel) -> Self {
        Self::new(detectors, intel, rayon::current_num_threads())
    }

    /// Decodes one source (as `palisade_logs::flow::decode_flows` would: input already
    /// decompressed, bad lines reported and skipped) and runs its flows through the detectors.
    pub fn scan<R: BufRead>(
        &mut self,
        mut reader: R,
        source_name: &str,
        format: FlowFormat,
    ) -> FlowDecodeSummary {
        match resolve_format(&mut reader, format) {
            Ok(FlowFormat::Json) => {
                let mut block = Vec::with_capacity(BLOCK_FLOWS);
                let summary = decode_flows_compact(reader, source_name, FlowFormat::Json, |flow| {
                    block.push(*flow);
                    if block.len() == BLOCK_FLOWS {
                        self.process_flows(&block);
                        block.clear();
                    }
                });
                self.process_flows(&block);
                summary
            }
            Ok(_) => self.scan_aws_text(reader, source_name),
            Err(error) => {
                let mut summary = FlowDecodeSummary::new();
                summary.push_io_error(source_name, 1, &error);
                summary
            }
        }
    }

    /// Runs flows the caller decoded through the detectors.
    pub fn process_flows(&mut self, flows: &[CompactFlow]) {
        if flows.is_empty() {
            return;
        }
        let pieces = self.threads * PIECES_PER_THREAD;
        let piece_length = flows.len().div_ceil(pieces).max(1);
        let chunks: Vec<&[CompactFlow]> = flows.chunks(piece_length).collect();
        self.prepared.resize_with(chunks.len(), Vec::new);
        let (detectors, intel) = (self.detectors, self.intel);
        chunks
            .par_iter()
            .zip(self.prepared[..chunks.len()].par_iter_mut())
            .for_each(|(chunk, prepared)| {
                prepared.clear();
                prepared.extend(chunk.iter().map(|flow| detectors.prepare(intel, flow)));
            });
        self.detect(chunks.len());
    }

    /// Reads AWS text in blocks of whole lines and runs each block on all threads, reading the
    /// next block on the calling thread meanwhile (reading, and decompressing gzipped input,
    /// would otherwise leave the pool idle).
    fn scan_aws_text<R: Read>(&mut self, mut reader: R, source_name: &str) -> FlowDecodeSummary {
        let mut summary = FlowDecodeSummary::new();
        let mut layout = AwsLayout::default();
        let mut lines_before = 0u64;
        let mut current = Block::new();
        let mut next = Block::new();
        current.fill(&mut reader);
        loop {
            let Some(end) = current.cut() else {
                // One line longer than the buffer: make room and read on.
                current.grow();
                current.fill(&mut reader);
                continue;
            };
            let last = current.end_of_input || current.failure.is_some();
            next.start_with(&current.buffer[end..current.filled]);
            let text = &current.buffer[..end];
            if last {
                self.process_aws_block(
                    text,
                    source_name,
                    &mut layout,
                    &mut lines_before,
                    &mut summary,
                );
            } else {
                let (layout, lines_before, summary) =
                    (&mut layout, &mut lines_before, &mut summary);
                rayon::in_place_scope(|scope| {
                    scope.spawn(|_| {
                        self.process_aws_block(text, source_name, layout, lines_before, summary);
                    });
                    next.fill(&mut reader);
                });
            }
            if let Some(error) = current.failure.take() {
                summary.push_io_error(source_name, lines_before + 1, &error);
                break;
            }
            if last {
                break;
            }
            std::mem::swap(&mut current, &mut next);
        }
        summary
    }

    /// Decodes a block of whole lines on all threads, then detects.
    fn process_aws_block(
        &mut self,
        text: &[u8],
        source_name: &str,
        layout: &mut AwsLayout,
        lines_before: &mut u64,
        summary: &mut FlowDecodeSummary,
    ) {
        if text.is_empty() {
            return;
        }
        let pieces = split_at_lines(text, self.threads * PIECES_PER_THREAD);
        self.prepared.resize_with(pieces.len(), Vec::new);
        let (detectors, intel) = (self.detectors, self.intel);
        let guess = &*layout;
        let mut outcomes: Vec<_> = pieces
            .par_iter()
            .zip(self.prepared[..pieces.len()].par_iter_mut())
            .map(|(piece, prepared)| {
                prepared.clear();
                decode_aws_chunk(piece, source_name, 1, guess.clone(), |flow| {
                    prepared.push(detectors.prepare(intel, flow));
                })
            })
            .collect();
        // Every piece was decoded with the layout the block started with; a piece after a
        // header line (rare: custom formats start their files with one) is decoded again with
        // the layout in force.
        let mut current = layout.clone();
        for (index, outcome) in outcomes.iter_mut().enumerate() {
            if index > 0 && current != *layout {
                let prepared = &mut self.prepared[index];
                prepared.clear();
                *outcome =
                    decode_aws_chunk(pieces[index], source_name, 1, current.clone(), |flow| {
                        prepared.push(detectors.prepare(intel, flow));
                    });
            }
            for error in &mut outcome.summary.errors {
                error.line += *lines_before;
            }
            *lines_before += outcome.lines;
            current = outcome.layout.clone();
        }
        *layout = current;
        for outcome in outcomes {
            summary.absorb(outcome.summary);
        }
        self.detect(pieces.len());
    }

    /// Runs every shard over the prepared flows of the first `pieces` pieces, then merges what
    /// they found.
    fn detect(&mut self, pieces: usize) {
        let (detectors, intel) = (self.detectors, self.intel);
        let prepared = &self.prepared[..pieces];
        self.flows += prepared.iter().map(|piece| piece.len() as u64).sum::<u64>();
        self.shards.par_iter_mut().for_each(|shard| {
            for flow in prepared.iter().flatten() {
                let before = shard.findings.len();
                detectors.process_prepared(&mut shard.state, intel, flow, &mut shard.findings);
                if shard.findings.len() > before {
                    shard.closings.push((before, shard.state.watermark));
                }
            }
        });
        self.merge();
    }

    /// Moves the shards' findings of this round into `findings`, in single-state order.
    fn merge(&mut self) {
        let mut tagged: Vec<(i64, NetworkFinding)> = Vec::new();
        for shard in &mut self.shards {
            let closings = std::mem::take(&mut shard.closings);
            let mut findings = std::mem::take(&mut shard.findings);
            // Each closing's findings run to the next closing's first: take them from the end.
            for (first, watermark) in closings.iter().rev() {
                tagged.extend(
                    findings
                        .drain(*first..)
                        .map(|finding| (*watermark, finding)),
                );
            }
        }
        if tagged.is_empty() {
            return;
        }
        tagged.sort_by(|left, right| {
            left.0
                .cmp(&right.0)
                .then_with(|| finding_order(&left.1, &right.1))
        });
        self.findings
            .extend(tagged.into_iter().map(|(_, finding)| finding));
    }

    /// Flows run through the detectors so far.
    pub fn flows(&self) -> u64 {
        self.flows
    }

    /// Closes every window (end of input) and returns all findings, in the order one
    /// [`NetworkDetectorState`] would have given them, with the detectors' counters.
    pub fn finish(mut self) -> (Vec<NetworkFinding>, Vec<(DetectorKind, DetectorStats)>) {
        let detectors = self.detectors;
        for shard in &mut self.shards {
            let before = shard.findings.len();
            detectors.flush(&mut shard.state, &mut shard.findings);
            if shard.findings.len() > before {
                shard.closings.push((before, i64::MAX));
            }
        }
        self.merge();
        let mut stats: Vec<(DetectorKind, DetectorStats)> = DetectorKind::ALL
            .iter()
            .map(|kind| (*kind, DetectorStats::default()))
            .collect();
        for shard in &self.shards {
            for (total, (_, part)) in stats.iter_mut().zip(shard.state.stats()) {
                total.1.flows_counted += part.flows_counted;
                total.1.findings += part.findings;
                total.1.suppressed += part.suppressed;
                total.1.late_flows += part.late_flows;
                total.1.open_keys += part.open_keys;
            }
        }
        (self.findings, stats)
    }
}

/// A buffer of input text being filled from the reader.
struct Block {
    buffer: Vec<u8>,
    filled: usize,
    end_of_input: bool,
    failure: Option<io::Error>,
}

impl Block {
    fn new() -> Self {
        Self {
            buffer: vec![0u8; BLOCK_BYTES],
            filled: 0,
            end_of_input: false,
            failure: None,
        }
    }

    /// Reads until the buffer is full, the input ends or fails.
    fn fill<R: Read>(&mut self, reader: &mut R) {
        while self.filled < self.buffer.len() {
            match reader.read(&mut self.buffer[self.filled..]) {
                Ok(0) => {
                    self.end_of_input = true;
                    break;
                }
                Ok(read) => self.filled += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.failure = Some(error);
                    break;
                }
            }
        }
    }

    /// Where the whole lines of the buffer end: all of it at the end of input, after the last
    /// line end otherwise (nothing when the input failed before any), or `None` when no line
    /// ends in a full buffer.
    fn cut(&self) -> Option<usize> {
        if self.end_of_input {
            return Some(self.filled);
        }
        match memchr::memrchr(b'\n', &self.buffer[..self.filled]) {
            Some(last) => Some(last + 1),
            None if self.failure.is_some() => Some(0),
            None => None,
        }
    }

    fn grow(&mut self) {
        self.buffer.resize(self.buffer.len() * 2, 0);
    }

    /// Starts the buffer with `tail` (the partial line of the previous block).
    fn start_with(&mut self, tail: &[u8]) {
        if self.buffer.len() < tail.len() * 2 {
            self.buffer.resize(tail.len() * 2, 0);
        }
        self.buffer[..tail.len()].copy_from_slice(tail);
        self.filled = tail.len();
        self.end_of_input = false;
        self.failure = None;
    }
}

/// Cuts `text` into about `pieces` pieces that end at line ends.
fn split_at_lines(text: &[u8], pieces: usize) -> Vec<&[u8]> {
    let target = text.len().div_ceil(pieces.max(1)).max(1);
    let mut result = Vec::with_capacity(pieces);
    let mut rest = text;
    while !rest.is_empty() {
        if rest.len() <= target {
            result.push(rest);
            break;
        }
        let end =
            memchr::memchr(b'\n', &rest[target..]).map_or(rest.len(), |offset| target + offset + 1);
        let (piece, after) = rest.split_at(end);
        result.push(piece);
        rest = after;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its text in uneven reads and fails (once) at `fail_at`, if set.
    struct ChoppyReader {
        text: Vec<u8>,
        position: usize,
        fail_at: Option<usize>,
        reads: usize,
    }

    impl Read for ChoppyReader {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            if self.reads.is_multiple_of(7) {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "again"));
            }
            let mut end = (self.position + 100_000 + self.reads * 977).min(self.text.len());
            if let Some(fail_at) = self.fail_at {
                if self.position >= fail_at {
                    return Err(io::Error::other("disk gone"));
                }
                end = end.min(fail_at);
            }
            let length = (end - self.position).min(out.len());
            out[..length].copy_from_slice(&self.text[self.position..self.position + length]);
            self.position += length;
            Ok(length)
        }
    }

    /// Several blocks read while the previous one is processed, a line longer than a block,
    /// and an input that fails midway: the same summary, flows and findings as one state
    /// reading the same input.
    #[test]
    fn blocks_read_ahead_give_what_one_state_gives() {
        use crate::network::generator::{self, GeneratorConfig};
        use crate::network::{NetworkDetectorConfig, ThreatIntel};

        let config = GeneratorConfig {
            seed: 11,
            background_records: 30_000,
            ..GeneratorConfig::default()
        };
        let mut text = Vec::new();
        let mut lines = 0usize;
        let traffic = generator::generate(&config, |record| {
            lines += 1;
            if lines == 9_000 {
                // A line longer than a block (reported as a bad line).
                text.extend(std::iter::repeat_n(b'7', BLOCK_BYTES * 2 + 5));
                text.push(b'\n');
            }
            palisade_logs::flow::aws::write_default_format_line(record, &mut text)
                .expect("in memory");
        });
        assert!(text.len() > BLOCK_BYTES * 4);
        let intel = ThreatIntel::build([("generated", &traffic.intel[..])]);
        let detectors = NetworkDetectors::new(NetworkDetectorConfig::default()).expect("valid");
        for fail_at in [None, Some(text.len() * 2 / 3)] {
            let reader = || ChoppyReader {
                text: text.clone(),
                position: 0,
                fail_at,
                reads: 0,
            };
            let mut state = detectors.new_state();
            let mut expected = Vec::new();
            let expected_summary = decode_flows_compact(
                io::BufReader::new(reader()),
                "choppy.log",
                FlowFormat::AwsVpcText,
                |flow| detectors.process_compact(&mut state, &intel, flow, &mut expected),
            );
            detectors.flush(&mut state, &mut expected);
            assert_eq!(
                expected_summary.bad_records,
                1 + u64::from(fail_at.is_some())
            );
            for threads in [1, 2, 3] {
                let mut scan = ParallelScan::new(&detectors, &intel, threads);
                let summary = scan.scan(
                    io::BufReader::new(reader()),
                    "choppy.log",
                    FlowFormat::AwsVpcText,
                );
                assert_eq!(summary, expected_summary, "{threads} threads, {fail_at:?}");
                assert_eq!(scan.flows(), state.flows_seen());
                let (findings, stats) = scan.finish();
                assert!(findings == expected, "{threads} threads, {fail_at:?}");
                assert_eq!(stats, state.stats());
            }
        }
    }

    #[test]
    fn pieces_end_at_line_ends_and_cover_the_text() {
        let text = b"aa\nbbbb\nc\n\ndddddd\neee";
        for pieces in 1..8 {
            let split = split_at_lines(text, pieces);
            assert_eq!(split.concat(), text.to_vec());
            for piece in &split[..split.len() - 1] {
                assert_eq!(piece.last(), Some(&b'\n'));
            }
        }
    }
}
