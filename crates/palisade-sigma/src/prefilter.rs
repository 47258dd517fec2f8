//! Prefilter: decides from a record's raw JSON text, without parsing it into a tree, which rules
//! could possibly match.
//!
//! For each rule the compiler derives a conjunction of clauses from its detection; an event the
//! rule matches satisfies every clause. Two kinds:
//! - **Field clauses** come from items on a field (`eventName: [StopLogging, DeleteTrail]`,
//!   `userAgent|contains: TruffleHog`, `userIdentity.arn|re: '.+:assumed-role/aws:.+'`): the
//!   field's value must equal, or contain, one of a few strings (ASCII case-insensitively). One
//!   structural walk over the record (no allocation, string contents skipped with `memchr2`)
//!   extracts the values of every field some rule indexes on.
//! - **Literal clauses** (for keyword searches and fields that cannot be indexed) need one of a
//!   few literals anywhere in the text; an Aho-Corasick pass finds them, run only when a rule
//!   that relies on literals is in play, since it costs far more than the walk.
//!
//! A rule whose clauses are not all satisfied is skipped; a record no rule survives is never
//! parsed. On CloudTrail that is most records, which is what makes the throughput target
//! reachable: building a `serde_json::Value` costs more than everything else put together.
//!
//! The derivation only drops constraints it cannot prove (negations, numeric comparisons,
//! encodings, non-ASCII text), and the walk answers "unknown" — which satisfies every clause on
//! that field — for anything it does not fully understand (escaped or non-ASCII values, arrays,
//! non-string values, keys with escapes, dotted top-level keys, malformed JSON). So the
//! prefilter may let a record through needlessly but never hides a match. JSON escapes could
//! hide a literal from the Aho-Corasick pass (`\u0041`, `\/`), as could the Kelvin sign (which
//! lower-cases to ASCII `k`); records containing any of those pass every literal clause.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use memchr::memchr2;
use rsigma_parser::{
    ArrayQuantifier, ConditionExpr, Detection, DetectionItem, Modifier, Quantifier,
    SelectorPattern, SigmaRule, SigmaValue, StringPart,
};

/// Literals shorter than this are too common to be worth searching the whole text for.
const MIN_LITERAL_LEN: usize = 3;
/// Above this many clauses, an `or` is weakened to a single clause instead of distributed.
const MAX_DISTRIBUTED_CLAUSES: usize = 32;
/// Sequences that make the raw text unreliable for literal checks.
const BYPASS_PATTERNS: [&str; 3] = ["\\u", "\\/", "\u{212A}"];

/// A test on one field's value; the string is lower-cased ASCII.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FieldTest {
    Equals(String),
    Contains(String),
}

impl FieldTest {
    fn text(&self) -> &str {
        match self {
            Self::Equals(text) | Self::Contains(text) => text,
        }
    }

    fn accepts(&self, value: &[u8]) -> bool {
        match self {
            Self::Equals(text) => value.eq_ignore_ascii_case(text.as_bytes()),
            Self::Contains(text) => {
                let needle = text.as_bytes();
                needle.is_empty()
                    || value
                        .windows(needle.len())
                        .any(|window| window.eq_ignore_ascii_case(needle))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Clause {
    /// One of these literal ids occurs in the text.
    Literals(Vec<u32>),
    /// The field at `path` passes one of `tests`.
    Field { path: u32, tests: Vec<FieldTest> },
}

/// A conjunction of clauses. Empty = no constraint.
pub(crate) type Clauses = Vec<Clause>;

/// Collects literals and field paths while rules are analysed.
#[derive(Debug, Default)]
pub(crate) struct LiteralTable {
    literals: Vec<String>,
    index: HashMap<String, u32>,
    paths: Vec<String>,
    path_index: HashMap<String, u32>,
}

impl LiteralTable {
    fn intern(&mut self, literal: &str) -> u32 {
        let lowered = literal.to_ascii_lowercase();
        if let Some(&id) = self.index.get(&lowered) {
            return id;
        }
        let id =
            u32::try_from(self.literals.len()).expect("fewer than 2^32 literals in a rule pack");
        self.literals.push(lowered.clone());
        self.index.insert(lowered, id);
        id
    }

    fn intern_path(&mut self, path: &str) -> u32 {
        if let Some(&id) = self.path_index.get(path) {
            return id;
        }
        let id =
            u32::try_from(self.paths.len()).expect("fewer than 2^32 field paths in a rule pack");
        self.paths.push(path.to_owned());
        self.path_index.insert(path.to_owned(), id);
        id
    }

    /// A field clause as a literal clause (a value that equals or contains a string contains it
    /// in the raw text too), when every string is a safe literal.
    fn field_as_literals(&mut self, tests: &[FieldTest]) -> Option<Clause> {
        if !tests.iter().all(|test| is_safe_literal(test.text())) {
            return None;
        }
        let mut ids: Vec<u32> = tests.iter().map(|test| self.intern(test.text())).collect();
        ids.sort_unstable();
        ids.dedup();
        Some(Clause::Literals(ids))
    }
}

/// Derives the clauses a rule's events must satisfy.
pub(crate) fn rule_clauses(rule: &SigmaRule, table: &mut LiteralTable) -> Clauses {
    let named = &rule.detection.named;
    let per_condition: Vec<Clauses> = rule
        .detection
        .conditions
        .iter()
        .map(|condition| condition_clauses(condition, named, table))
        .collect();
    or_all(per_condition, table)
}

fn condition_clauses(
    condition: &ConditionExpr,
    named: &HashMap<String, Detection>,
    table: &mut LiteralTable,
) -> Clauses {
    match condition {
        ConditionExpr::And(parts) => parts
            .iter()
            .flat_map(|part| condition_clauses(part, named, table))
            .collect(),
        ConditionExpr::Or(parts) => {
            let alternatives = parts
                .iter()
                .map(|part| condition_clauses(part, named, table))
                .collect();
            or_all(alternatives, table)
        }
        ConditionExpr::Not(_) => Vec::new(),
        ConditionExpr::Identifier(name) => named
            .get(name)
            .map(|detection| detection_clauses(detection, table))
            .unwrap_or_default(),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let mut names: Vec<&String> = named
                .keys()
                .filter(|name| match pattern {
                    SelectorPattern::Them => true,
                    SelectorPattern::Pattern(glob) => {
                        rsigma_parser::detection_name_matches(glob, name)
                    }
                })
                .collect();
            names.sort();
            match quantifier {
                // `all of them` skips `_`-prefixed identifiers; dropping conjuncts is always safe.
                Quantifier::All => names
                    .into_iter()
                    .filter(|name| {
                        !(matches!(pattern, SelectorPattern::Them) && name.starts_with('_'))
                    })
                    .flat_map(|name| detection_clauses(&named[name], table))
                    .collect(),
                Quantifier::Any | Quantifier::Count(_) => {
                    let alternatives = names
                        .into_iter()
                        .map(|name| detection_clauses(&named[name], table))
                        .collect();
                    or_all(alternatives, table)
                }
            }
        }
    }
}

fn detection_clauses(detection: &Detection, table: &mut LiteralTable) -> Clauses {
    match detection {
        Detection::AllOf(items) => items
            .iter()
            .flat_map(|item| item_clauses(item, table))
            .collect(),
        Detection::AnyOf(alternatives) => {
            let alternatives = alternatives
                .iter()
                .map(|alternative| detection_clauses(alternative, table))
                .collect();
            or_all(alternatives, table)
        }
        Detection::Keywords(values) => keyword_clauses(values, table),
        Detection::ArrayMatch {
            quantifier, body, ..
        } => match quantifier {
            // Fields inside the body are relative to an array member: keep only literals.
            ArrayQuantifier::Any | ArrayQuantifier::All => detection_clauses(body, table)
                .into_iter()
                .filter_map(|clause| match clause {
                    Clause::Literals(_) => Some(clause),
                    Clause::Field { tests, .. } => table.field_as_literals(&tests),
                })
                .collect(),
            ArrayQuantifier::AllOrEmpty | ArrayQuantifier::None => Vec::new(),
        },
        Detection::And(parts) => parts
            .iter()
            .flat_map(|part| detection_clauses(part, table))
            .collect(),
        Detection::Conditional { named, condition } => condition_clauses(condition, named, table),
    }
}

fn keyword_clauses(values: &[SigmaValue], table: &mut LiteralTable) -> Clauses {
    let literals: Option<Vec<String>> = values.iter().map(value_literal).collect();
    match literals {
        Some(literals) if !literals.is_empty() => {
            let mut ids: Vec<u32> = literals
                .iter()
                .map(|literal| table.intern(literal))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            vec![Clause::Literals(ids)]
        }
        _ => Vec::new(),
    }
}

fn item_clauses(item: &DetectionItem, table: &mut LiteralTable) -> Clauses {
    let Some(field) = item.field.name.as_deref() else {
        return keyword_clauses(&item.values, table);
    };
    let modifiers = &item.field.modifiers;
    let tests: Vec<Option<FieldTest>> = if item.field.has_modifier(Modifier::Re) {
        let other_modifiers = modifiers.iter().any(|modifier| {
            !matches!(
                modifier,
                Modifier::Re
                    | Modifier::IgnoreCase
                    | Modifier::Multiline
                    | Modifier::DotAll
                    | Modifier::Cased
                    | Modifier::All
            )
        });
        if other_modifiers {
            return Vec::new();
        }
        item.values.iter().map(regex_test).collect()
    } else {
        let unprovable = modifiers.iter().any(|modifier| {
            !matches!(
                modifier,
                Modifier::Contains
                    | Modifier::StartsWith
                    | Modifier::EndsWith
                    | Modifier::All
                    | Modifier::Cased
            )
        });
        if unprovable {
            return Vec::new();
        }
        let substring = modifiers.iter().any(|modifier| {
            matches!(
                modifier,
                Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith
            )
        });
        item.values
            .iter()
            .map(|value| value_test(value, substring))
            .collect()
    };
    let path = table.intern_path(field);
    if item.field.has_modifier(Modifier::All) {
        return tests
            .into_iter()
            .flatten()
            .map(|test| Clause::Field {
                path,
                tests: vec![test],
            })
            .collect();
    }
    match tests.into_iter().collect::<Option<Vec<FieldTest>>>() {
        Some(mut tests) if !tests.is_empty() => {
            tests.sort();
            tests.dedup();
            vec![Clause::Field { path, tests }]
        }
        _ => Vec::new(),
    }
}

/// The test a value puts on its field, when one can be proven.
fn value_test(value: &SigmaValue, substring: bool) -> Option<FieldTest> {
    match value {
        SigmaValue::String(string) => {
            let has_wildcards = string
                .parts
                .iter()
                .any(|part| matches!(part, StringPart::Special(_)));
            let longest = longest_plain_part(value)?;
            if !longest.is_ascii() {
                return None;
            }
            if substring || has_wildcards {
                // An empty part (`*` alone) tests nothing.
                (!longest.is_empty()).then(|| FieldTest::Contains(longest.to_ascii_lowercase()))
            } else {
                Some(FieldTest::Equals(longest.to_ascii_lowercase()))
            }
        }
        SigmaValue::Integer(number) if !substring => Some(FieldTest::Equals(number.to_string())),
        SigmaValue::Integer(number) => Some(FieldTest::Contains(number.to_string())),
        SigmaValue::Float(_) | SigmaValue::Bool(_) | SigmaValue::Null => None,
    }
}

/// `|re`: a literal the regular expression cannot match without (the longest literal of a
/// top-level concatenation, e.g. `:assumed-role/aws:` in `.+:assumed-role/aws:.+`).
fn regex_test(value: &SigmaValue) -> Option<FieldTest> {
    let SigmaValue::String(pattern) = value else {
        return None;
    };
    let hir = regex_syntax::Parser::new().parse(&pattern.original).ok()?;
    let literal = required_literal(&hir)?;
    (literal.is_ascii() && !literal.is_empty())
        .then(|| FieldTest::Contains(literal.to_ascii_lowercase()))
}

fn required_literal(hir: &regex_syntax::hir::Hir) -> Option<String> {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Literal(literal) => String::from_utf8(literal.0.to_vec()).ok(),
        HirKind::Capture(capture) => required_literal(&capture.sub),
        HirKind::Repetition(repetition) if repetition.min >= 1 => required_literal(&repetition.sub),
        HirKind::Concat(items) => items
            .iter()
            .filter_map(required_literal)
            .max_by_key(String::len),
        _ => None,
    }
}

fn is_safe_literal(literal: &str) -> bool {
    literal.len() >= MIN_LITERAL_LEN
        && literal.bytes().all(|byte| {
            byte.is_ascii() && !byte.is_ascii_control() && byte != b'"' && byte != b'\\'
        })
}

fn longest_plain_part(value: &SigmaValue) -> Option<&str> {
    let SigmaValue::String(string) = value else {
        return None;
    };
    let parts: Vec<&str> = string
        .parts
        .iter()
        .filter_map(|part| match part {
            StringPart::Plain(text) => Some(text.as_str()),
            StringPart::Special(_) => None,
        })
        .collect();
    // Longest part; on a tie the earliest (the reversed iterator's last maximum).
    Some(
        parts
            .into_iter()
            .rev()
            .max_by_key(|text| text.len())
            .unwrap_or(""),
    )
}

/// Returns a literal every value matching `value` must contain, if one can be proven.
fn value_literal(value: &SigmaValue) -> Option<String> {
    let literal = match value {
        SigmaValue::String(_) => longest_plain_part(value)?.to_owned(),
        SigmaValue::Integer(number) => number.to_string(),
        SigmaValue::Bool(flag) => flag.to_string(),
        SigmaValue::Float(_) | SigmaValue::Null => return None,
    };
    is_safe_literal(&literal).then_some(literal)
}

/// `left or right` as one clause, if a sound one exists.
fn or_clause(left: &Clause, right: &Clause, table: &mut LiteralTable) -> Option<Clause> {
    match (left, right) {
        (
            Clause::Field {
                path: left_path,
                tests: left_tests,
            },
            Clause::Field {
                path: right_path,
                tests: right_tests,
            },
        ) if left_path == right_path => {
            let mut tests: Vec<FieldTest> = left_tests.iter().chain(right_tests).cloned().collect();
            tests.sort();
            tests.dedup();
            Some(Clause::Field {
                path: *left_path,
                tests,
            })
        }
        _ => {
            let as_literals = |clause: &Clause, table: &mut LiteralTable| match clause {
                Clause::Literals(ids) => Some(ids.clone()),
                Clause::Field { tests, .. } => match table.field_as_literals(tests) {
                    Some(Clause::Literals(ids)) => Some(ids),
                    _ => None,
                },
            };
            let mut ids = as_literals(left, table)?;
            ids.extend(as_literals(right, table)?);
            ids.sort_unstable();
            ids.dedup();
            Some(Clause::Literals(ids))
        }
    }
}

/// `a or b or …` as clauses: distributed when small, otherwise weakened to the disjunction of
/// each side's first clause. A disjunction with no sound clause constrains nothing.
fn or_all(alternatives: Vec<Clauses>, table: &mut LiteralTable) -> Clauses {
    if alternatives.is_empty() || alternatives.iter().any(Vec::is_empty) {
        return Vec::new();
    }
    let mut iterator = alternatives.into_iter();
    let mut result = iterator.next().unwrap_or_default();
    for alternative in iterator {
        if result.len() * alternative.len() > MAX_DISTRIBUTED_CLAUSES {
            result.truncate(1);
        }
        let mut distributed = Vec::new();
        for left in &result {
            for right in alternative.iter().take(MAX_DISTRIBUTED_CLAUSES) {
                if let Some(clause) = or_clause(left, right, table) {
                    distributed.push(clause);
                }
            }
        }
        if distributed.is_empty() {
            return Vec::new();
        }
        result = distributed;
    }
    result
}

/// A node of the trie of indexed field paths (`userIdentity.type` → `userIdentity` → `type`).
#[derive(Debug, Default)]
struct PathNode {
    /// The path ending at this key, if indexed.
    leaf: Option<u32>,
    children: Vec<(Vec<u8>, PathNode)>,
    /// Every path at or below this node, to mark them unknown at once.
    all_paths: Vec<u32>,
}

impl PathNode {
    fn child(&self, key: &[u8]) -> Option<&PathNode> {
        self.children
            .iter()
            .find(|(child_key, _)| child_key.as_slice() == key)
            .map(|(_, node)| node)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldValue {
    Absent,
    /// Present but not checkable from the text (the clause counts as satisfied).
    Unknown,
    /// A plain ASCII string without escapes, at this byte range of the record.
    Text(usize, usize),
}

/// The compiled prefilter of a pack.
#[derive(Debug)]
pub(crate) struct Prefilter {
    automaton: Option<AhoCorasick>,
    literal_count: usize,
    path_count: usize,
    /// Top-level keys containing a dot that equal an indexed path (rsigma may read them flat).
    dotted_paths: Vec<(Vec<u8>, u32)>,
    trie: PathNode,
    /// Per rule, its clauses (empty: always a candidate).
    rule_clauses: Vec<Clauses>,
    /// Per rule, whether a clause of it needs the Aho-Corasick pass.
    needs_literals: Vec<bool>,
}

/// Per-thread scratch space, reused across records so the prefilter does not allocate.
#[derive(Debug, Default)]
pub struct MatchScratch {
    seen: Vec<u64>,
    fields: Vec<FieldValue>,
    pub(crate) candidates: Vec<u32>,
}

impl Prefilter {
    pub(crate) fn build(table: LiteralTable, rule_clauses: Vec<Clauses>) -> Self {
        // A rule keeps its field clauses when it has any: they are cheap. Literal clauses are
        // only worth the Aho-Corasick pass for rules that have nothing else.
        let rule_clauses: Vec<Clauses> = rule_clauses
            .into_iter()
            .map(|clauses| {
                if clauses
                    .iter()
                    .any(|clause| matches!(clause, Clause::Field { .. }))
                {
                    clauses
                        .into_iter()
                        .filter(|clause| matches!(clause, Clause::Field { .. }))
                        .collect()
                } else {
                    clauses
                }
            })
            .collect();
        let needs_literals: Vec<bool> = rule_clauses
            .iter()
            .map(|clauses| {
                clauses
                    .iter()
                    .any(|clause| matches!(clause, Clause::Literals(_)))
            })
            .collect();
        let literal_count = table.literals.len();
        let automaton = if needs_literals.iter().any(|needs| *needs) {
            let patterns: Vec<&str> = table
                .literals
                .iter()
                .map(String::as_str)
                .chain(BYPASS_PATTERNS)
                .collect();
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::DFA))
                .build(&patterns)
                .ok()
        } else {
            None
        };
        let mut trie = PathNode::default();
        let mut dotted_paths = Vec::new();
        for (id, path) in table.paths.iter().enumerate() {
            let id = id as u32;
            if path.contains('.') {
                dotted_paths.push((path.as_bytes().to_vec(), id));
            }
            let mut node = &mut trie;
            for segment in path.split('.') {
                node.all_paths.push(id);
                let position = match node
                    .children
                    .iter()
                    .position(|(key, _)| key.as_slice() == segment.as_bytes())
                {
                    Some(position) => position,
                    None => {
                        node.children
                            .push((segment.as_bytes().to_vec(), PathNode::default()));
                        node.children.len() - 1
                    }
                };
                node = &mut node.children[position].1;
            }
            node.all_paths.push(id);
            node.leaf = Some(id);
        }
        Self {
            automaton,
            literal_count,
            path_count: table.paths.len(),
            dotted_paths,
            trie,
            rule_clauses,
            needs_literals,
        }
    }

    /// Number of distinct literals and field paths the pack checks.
    pub(crate) fn literal_count(&self) -> usize {
        self.literal_count + self.path_count
    }

    /// Fills `scratch.candidates` with the rules of `subset` that may match `raw`.
    pub(crate) fn select(&self, raw: &[u8], subset: &[u32], scratch: &mut MatchScratch) {
        scratch.candidates.clear();
        scratch.fields.clear();
        scratch.fields.resize(self.path_count, FieldValue::Absent);
        if self.path_count > 0
            && walk_record(raw, &self.trie, &self.dotted_paths, &mut scratch.fields).is_none()
        {
            // Not an object we understand: every field is unknown.
            scratch.fields.fill(FieldValue::Unknown);
        }
        let mut literals_checked = false;
        let mut bypass_literals = false;
        for &rule in subset {
            if self.needs_literals[rule as usize] && !literals_checked {
                literals_checked = true;
                bypass_literals = self.find_literals(raw, scratch);
            }
            let clauses = &self.rule_clauses[rule as usize];
            let satisfied = clauses.iter().all(|clause| match clause {
                Clause::Literals(ids) => {
                    bypass_literals
                        || ids
                            .iter()
                            .any(|id| scratch.seen[*id as usize / 64] & (1 << (*id % 64)) != 0)
                }
                Clause::Field { path, tests } => match scratch.fields[*path as usize] {
                    FieldValue::Absent => false,
                    FieldValue::Unknown => true,
                    FieldValue::Text(start, end) => {
                        tests.iter().any(|test| test.accepts(&raw[start..end]))
                    }
                },
            });
            if satisfied {
                scratch.candidates.push(rule);
            }
        }
    }

    /// Marks the literals present in `raw`; returns true when the text cannot be trusted.
    fn find_literals(&self, raw: &[u8], scratch: &mut MatchScratch) -> bool {
        let Some(automaton) = &self.automaton else {
            return true;
        };
        let words = (self.literal_count + BYPASS_PATTERNS.len()).div_ceil(64);
        scratch.seen.clear();
        scratch.seen.resize(words, 0);
        for found in automaton.find_overlapping_iter(raw) {
            let id = found.pattern().as_usize();
            if id >= self.literal_count {
                return true;
            }
            scratch.seen[id / 64] |= 1 << (id % 64);
        }
        false
    }

    /// Says whether a rule has any constraint (for statistics and tests).
    pub(crate) fn is_constrained(&self, rule: usize) -> bool {
        !self.rule_clauses[rule].is_empty()
    }
}

fn skip_whitespace(raw: &[u8], mut position: usize) -> usize {
    while position < raw.len() && raw[position].is_ascii_whitespace() {
        position += 1;
    }
    position
}

/// With `raw[position] == b'"'`, returns the end of the string (after the closing quote) and
/// whether it contains a backslash.
fn skip_string(raw: &[u8], position: usize) -> Option<(usize, bool)> {
    let mut index = position + 1;
    let mut escaped = false;
    loop {
        let found = memchr2(b'"', b'\\', &raw[index..])?;
        index += found;
        if raw[index] == b'\\' {
            escaped = true;
            index += 2;
            if index > raw.len() {
                return None;
            }
        } else {
            return Some((index + 1, escaped));
        }
    }
}

/// Returns the end of the JSON value starting at `position`.
fn skip_value(raw: &[u8], position: usize) -> Option<usize> {
    match *raw.get(position)? {
        b'"' => skip_string(raw, position).map(|(end, _)| end),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut index = position;
            while index < raw.len() {
                match raw[index] {
                    b'"' => {
                        index = skip_string(raw, index)?.0;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(index + 1);
                        }
                    }
                    _ => {}
                }
                index += 1;
            }
            None
        }
        _ => {
            let mut index = position;
            while index < raw.len()
                && !matches!(raw[index], b',' | b'}' | b']')
                && !raw[index].is_ascii_whitespace()
            {
                index += 1;
            }
            Some(index)
        }
    }
}

fn mark(fields: &mut [FieldValue], paths: &[u32], value: FieldValue) {
    for path in paths {
        fields[*path as usize] = value;
    }
}

/// Walks the object at the start of `raw` (top level) and records the indexed fields' values.
/// Returns `None` when the text is not an object it can walk.
fn walk_record(
    raw: &[u8],
    trie: &PathNode,
    dotted: &[(Vec<u8>, u32)],
    fields: &mut [FieldValue],
) -> Option<()> {
    let start = skip_whitespace(raw, 0);
    walk_object(raw, start, trie, Some(dotted), fields).map(|_| ())
}

/// Walks the object at `position`; returns its end. Later duplicates of a key override earlier
/// ones, as in `serde_json`.
fn walk_object(
    raw: &[u8],
    position: usize,
    node: &PathNode,
    dotted: Option<&[(Vec<u8>, u32)]>,
    fields: &mut [FieldValue],
) -> Option<usize> {
    if raw.get(position) != Some(&b'{') {
        return None;
    }
    let mut index = skip_whitespace(raw, position + 1);
    if raw.get(index) == Some(&b'}') {
        return Some(index + 1);
    }
    loop {
        if raw.get(index) != Some(&b'"') {
            return None;
        }
        let (key_end, key_escaped) = skip_string(raw, index)?;
        let key = &raw[index + 1..key_end - 1];
        index = skip_whitespace(raw, key_end);
        if raw.get(index) != Some(&b':') {
            return None;
        }
        let value_start = skip_whitespace(raw, index + 1);
        let value_end;
        if key_escaped {
            // The key may decode to an indexed one.
            mark(fields, &node.all_paths, FieldValue::Unknown);
            value_end = skip_value(raw, value_start)?;
        } else {
            if let Some(dotted) = dotted
                && !dotted.is_empty()
                && memchr::memchr(b'.', key).is_some()
                && let Some((_, path)) = dotted
                    .iter()
                    .find(|(dotted_key, _)| dotted_key.as_slice() == key)
            {
                fields[*path as usize] = FieldValue::Unknown;
            }
            match node.child(key) {
                None => value_end = skip_value(raw, value_start)?,
                Some(child) => {
                    let first = *raw.get(value_start)?;
                    if first == b'{' {
                        if let Some(leaf) = child.leaf {
                            fields[leaf as usize] = FieldValue::Unknown;
                        }
                        value_end = walk_object(raw, value_start, child, None, fields)?;
                    } else {
                        value_end = skip_value(raw, value_start)?;
                        // A scalar where an object was expected: nested paths are absent.
                        for path in &child.all_paths {
                            if Some(*path) != child.leaf {
                                fields[*path as usize] = FieldValue::Absent;
                            }
                        }
                        if first == b'[' {
                            // Arrays are matched element-wise by the evaluator: unknown here.
                            mark(fields, &child.all_paths, FieldValue::Unknown);
                        } else if let Some(leaf) = child.leaf {
                            let text = &raw[value_start..value_end];
                            let plain = first == b'"'
                                && text.len() >= 2
                                && text.iter().all(|byte| byte.is_ascii() && *byte != b'\\');
                            fields[leaf as usize] = if plain {
                                FieldValue::Text(value_start + 1, value_end - 1)
                            } else if text == b"null" {
                                FieldValue::Absent
                            } else {
                                FieldValue::Unknown
                            };
                        }
                    }
                }
            }
        }
        index = skip_whitespace(raw, value_end);
        match raw.get(index) {
            Some(b',') => index = skip_whitespace(raw, index + 1),
            Some(b'}') => return Some(index + 1),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(yaml: &str) -> (Prefilter, usize) {
        let collection = rsigma_parser::parse_sigma_yaml(yaml).expect("parses");
        let mut table = LiteralTable::default();
        let clauses: Vec<Clauses> = collection
            .rules
            .iter()
            .map(|rule| rule_clauses(rule, &mut table))
            .collect();
        let count = clauses.len();
        (Prefilter::build(table, clauses), count)
    }

    fn candidates(prefilter: &Prefilter, rules: usize, raw: &str) -> Vec<u32> {
        let subset: Vec<u32> = (0..rules as u32).collect();
        let mut scratch = MatchScratch::default();
        prefilter.select(raw.as_bytes(), &subset, &mut scratch);
        scratch.candidates
    }

    const STOP_LOGGING: &str = r#"
title: t
logsource: {product: aws, service: cloudtrail}
detection:
    selection:
        eventSource: cloudtrail.amazonaws.com
        eventName: [StopLogging, DeleteTrail]
    filter:
        userAgent|contains: terraform
    condition: selection and not filter
"#;

    #[test]
    fn every_clause_must_be_met_case_insensitively() {
        let (prefilter, rules) = compile(STOP_LOGGING);
        assert!(prefilter.is_constrained(0));
        let hit = r#"{"eventSource":"CloudTrail.amazonaws.com","eventName":"stoplogging"}"#;
        assert_eq!(candidates(&prefilter, rules, hit), vec![0]);
        let other_event =
            r#"{"eventSource":"cloudtrail.amazonaws.com","eventName":"LookupEvents"}"#;
        assert!(candidates(&prefilter, rules, other_event).is_empty());
        // The negated filter imposes nothing: a record mentioning terraform is still a candidate.
        let with_filter_text = r#"{"eventSource":"cloudtrail.amazonaws.com","eventName":"DeleteTrail","userAgent":"terraform"}"#;
        assert_eq!(candidates(&prefilter, rules, with_filter_text), vec![0]);
    }

    #[test]
    fn escapes_bypass_the_prefilter() {
        let (prefilter, rules) = compile(STOP_LOGGING);
        let escaped =
            r#"{"eventSource":"cloudtrail.amazonaws.com","eventName":"\u0053topLogging"}"#;
        assert_eq!(candidates(&prefilter, rules, escaped), vec![0]);
    }

    #[test]
    fn unprovable_detections_are_unconstrained() {
        let yaml = r#"
title: t
logsource: {product: aws}
detection:
    a:
        sourceIPAddress|cidr: 10.0.0.0/8
    b:
        eventName|re: '^Delete'
    c:
        errorCode: null
    condition: a or b or c
"#;
        let (prefilter, _) = compile(yaml);
        assert!(!prefilter.is_constrained(0));
    }

    #[test]
    fn wildcards_keep_their_longest_literal_and_or_is_distributed() {
        let yaml = r#"
title: t
logsource: {product: aws}
detection:
    a:
        eventName: 'Delete*Policy'
    b:
        eventName|startswith: Detach
    condition: 1 of them
"#;
        let (prefilter, rules) = compile(yaml);
        assert_eq!(
            candidates(&prefilter, rules, r#"{"eventName":"DetachRolePolicy"}"#),
            vec![0]
        );
        assert_eq!(
            candidates(&prefilter, rules, r#"{"eventName":"DeleteUserPolicy"}"#),
            vec![0]
        );
        assert!(candidates(&prefilter, rules, r#"{"eventName":"PutUserPolicy"}"#).is_empty());
    }

    #[test]
    fn regular_expressions_contribute_their_required_literal() {
        let yaml = r#"
title: t
logsource: {product: aws}
detection:
    selection:
        userIdentity.arn|re: '.+:assumed-role/aws:.+'
    condition: selection
"#;
        let (prefilter, rules) = compile(yaml);
        assert!(prefilter.is_constrained(0));
        let hit = r#"{"userIdentity":{"arn":"arn:aws:sts::1:assumed-role/aws:ec2/i-1"}}"#;
        assert_eq!(candidates(&prefilter, rules, hit), vec![0]);
        assert!(
            candidates(
                &prefilter,
                rules,
                r#"{"userIdentity":{"arn":"arn:aws:iam::1:user/x"}}"#
            )
            .is_empty()
        );
        let alternation = "(?:Delete|Put)Bucket|Stop";
        let hir = regex_syntax::Parser::new()
            .parse(alternation)
            .expect("parses");
        assert_eq!(
            required_literal(&hir),
            None,
            "an alternation has no single required literal"
        );
    }

    #[test]
    fn or_distribution_and_weakening_stay_sound() {
        let mut table = LiteralTable::default();
        let literals = |ids: &[u32]| Clause::Literals(ids.to_vec());
        let left: Clauses = vec![literals(&[1]), literals(&[2])];
        let right: Clauses = vec![literals(&[3])];
        assert_eq!(
            or_all(vec![left.clone(), right], &mut table),
            vec![literals(&[1, 3]), literals(&[2, 3])]
        );
        assert!(or_all(vec![left, Vec::new()], &mut table).is_empty());
        let wide: Clauses = (0..10).map(|id| literals(&[id])).collect();
        assert!(or_all(vec![wide.clone(), wide], &mut table).len() <= MAX_DISTRIBUTED_CLAUSES);
        let field = |path, text: &str| Clause::Field {
            path,
            tests: vec![FieldTest::Equals(text.into())],
        };
        assert_eq!(
            or_all(vec![vec![field(0, "a")], vec![field(0, "b")]], &mut table),
            vec![Clause::Field {
                path: 0,
                tests: vec![FieldTest::Equals("a".into()), FieldTest::Equals("b".into())]
            }]
        );
        // Different fields with too-short values have no sound common clause.
        assert!(or_all(vec![vec![field(0, "a")], vec![field(1, "b")]], &mut table).is_empty());
    }

    #[test]
    fn field_walk_handles_nesting_duplicates_and_unknowns() {
        let (prefilter, rules) = compile(
            r#"
title: t
logsource: {product: aws}
detection:
    selection:
        userIdentity.type: Root
        eventName: ConsoleLogin
    condition: selection
"#,
        );
        let hit = r#"{"eventName":"consolelogin","userIdentity":{"arn":"x","type":"Root"}}"#;
        assert_eq!(candidates(&prefilter, rules, hit), vec![0]);
        let nested_elsewhere = r#"{"eventName":"ConsoleLogin","other":{"type":"Root"},"userIdentity":{"type":"IAMUser"}}"#;
        assert!(candidates(&prefilter, rules, nested_elsewhere).is_empty());
        let duplicate_key =
            r#"{"eventName":"ConsoleLogin","eventName":"Other","userIdentity":{"type":"Root"}}"#;
        assert!(
            candidates(&prefilter, rules, duplicate_key).is_empty(),
            "the last duplicate wins"
        );
        let escaped_value = r#"{"eventName":"ConsoleLogin","userIdentity":{"type":"Root"}}"#;
        assert_eq!(candidates(&prefilter, rules, escaped_value), vec![0]);
        let array_value = r#"{"eventName":["ConsoleLogin"],"userIdentity":{"type":"Root"}}"#;
        assert_eq!(candidates(&prefilter, rules, array_value), vec![0]);
        let flat_dotted_key = r#"{"eventName":"ConsoleLogin","userIdentity.type":"Root"}"#;
        assert_eq!(candidates(&prefilter, rules, flat_dotted_key), vec![0]);
        let missing = r#"{"eventName":"ConsoleLogin"}"#;
        assert!(candidates(&prefilter, rules, missing).is_empty());
        assert_eq!(candidates(&prefilter, rules, "not json"), vec![0]);
    }
}
