//! Compiled leaf checks: one operator with its expected value already parsed (numbers, CIDRs,
//! wildcards, string sets), and the semantics of each operator on a found property value.
//!
//! Hand-written rather than borrowed: the wildcard language is SCC's own (`*`, `?`, whole-string,
//! case-sensitive, with `\` escaping a literal), and the IP ranges are a 128-bit network plus a
//! prefix so that containment is two integer operations on the hot path. The reference evaluator
//! in [`crate::naive`] implements the same operators with `regex` and `ipnet` instead, and a
//! property test checks that both agree.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use crate::model::Operator;

/// Outcome of a check, the three values of SCC's Kleene logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The resource complies.
    Pass,
    /// The resource does not comply.
    Failure,
    /// The rule could not be decided (wrong property type, unparsable address, missing
    /// parameter, Rego evaluation error).
    Error,
}

impl Status {
    /// The wire name: `pass`, `failure` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Failure => "failure",
            Status::Error => "error",
        }
    }
}

/// A leaf's status and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Judgement {
    pub status: Status,
    pub reason: &'static str,
}

const fn judged(status: Status, reason: &'static str) -> Judgement {
    Judgement { status, reason }
}

const PASSED: Judgement = judged(Status::Pass, "condition holds");
pub(crate) const MISSING: Judgement = judged(Status::Failure, "property is missing or null");

/// Reasons are shared with the reference evaluator so both explain results in the same words.
pub(crate) mod reason {
    pub const NOT_EMPTY: &str = "property is not empty";
    pub const EMPTY: &str = "property is empty";
    pub const NOT_BOOLEAN: &str = "property is not a boolean or the string \"true\"/\"false\"";
    pub const NOT_TRUE: &str = "property is not true";
    pub const NOT_FALSE: &str = "property is not false";
    pub const NOT_SCALAR: &str = "property is not a string, number or boolean";
    pub const NOT_EQUAL: &str = "property equals none of the expected values";
    pub const EQUAL: &str = "property equals an excluded value";
    pub const NO_MATCH: &str = "property matches none of the patterns";
    pub const MATCH: &str = "property matches an excluded pattern";
    pub const NOT_CONTAINED: &str = "property contains none of the expected substrings";
    pub const CONTAINED: &str = "property contains an excluded substring";
    pub const NOT_LIST: &str = "property is not a string or a list of strings";
    pub const NOT_ALLOWED: &str = "property has an element outside the allowed list";
    pub const NOT_REQUIRED: &str = "property lacks a required element";
    pub const NOT_IP: &str = "property is not an IP address or CIDR (or a list of them)";
    pub const OUT_OF_RANGE: &str = "property has an address outside every allowed range";
    pub const IP_NOT_EQUAL: &str = "property address differs from every expected address";
    pub const IP_EQUAL: &str = "property address equals an excluded address";
    pub const NOT_NUMBER: &str = "property is not a number or a numeric string";
    pub const NUMBER_COMPARISON: &str = "numeric comparison does not hold";
    pub const NOT_DATE: &str =
        "property is not an RFC 3339 timestamp, a YYYY-MM-DD date or a number";
    pub const TOO_OLD: &str = "property is not less than the expected number of days before now";
}

/// A numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumComparison {
    Equals,
    NotEquals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

impl NumComparison {
    pub(crate) fn holds(self, found: f64, expected: f64) -> bool {
        match self {
            NumComparison::Equals => found == expected,
            NumComparison::NotEquals => found != expected,
            NumComparison::LessThan => found < expected,
            NumComparison::LessThanEquals => found <= expected,
            NumComparison::GreaterThan => found > expected,
            NumComparison::GreaterThanEquals => found >= expected,
        }
    }
}

/// An operator with its expected value compiled.
#[derive(Debug, Clone)]
pub(crate) enum Check {
    IsEmpty,
    IsNotEmpty,
    IsBool {
        expected: bool,
    },
    StringEquals {
        expected: TextSet,
        negate: bool,
    },
    StringMatch {
        patterns: Box<[Wildcard]>,
        negate: bool,
    },
    StringContains {
        needles: Box<[Box<str>]>,
        negate: bool,
    },
    StringsAllowed {
        allowed: TextSet,
    },
    StringsRequired {
        required: Box<[Box<str>]>,
    },
    IpsInRange {
        ranges: Box<[IpRange]>,
    },
    IpsEquals {
        expected: Box<[IpRange]>,
        negate: bool,
    },
    Number {
        comparison: NumComparison,
        expected: f64,
    },
    DaysLessThan {
        days: f64,
    },
    /// The expected value could not be built (a parameter without a usable value): every
    /// evaluation errors with this reason.
    Unresolved {
        reason: Box<str>,
    },
}

/// An error in a condition value: relative JSON pointer under `value`, and the message.
pub(crate) type ValueError = (String, String);

/// Compiles an operator and its (parameter-free) value.
pub(crate) fn compile_check(
    operator: Operator,
    value: Option<&Value>,
) -> Result<Check, Vec<ValueError>> {
    let required = || {
        value.filter(|value| !value.is_null()).ok_or_else(|| {
            vec![(
                String::new(),
                format!("operator `{operator}` needs a value"),
            )]
        })
    };
    let check = match operator {
        Operator::IsEmpty => Check::IsEmpty,
        Operator::IsNotEmpty => Check::IsNotEmpty,
        Operator::IsTrue => Check::IsBool { expected: true },
        Operator::IsFalse => Check::IsBool { expected: false },
        Operator::StringEquals | Operator::StringNotEquals => Check::StringEquals {
            expected: TextSet::new(texts(required()?, false)?),
            negate: operator == Operator::StringNotEquals,
        },
        Operator::StringMatch | Operator::StringNotMatch => {
            let mut errors = Vec::new();
            let mut patterns = Vec::new();
            for (text, pointer) in texts(required()?, false)?
                .into_iter()
                .zip(element_pointers(required()?))
            {
                match Wildcard::parse(&text) {
                    Ok(pattern) => patterns.push(pattern),
                    Err(message) => errors.push((pointer, message)),
                }
            }
            if !errors.is_empty() {
                return Err(errors);
            }
            Check::StringMatch {
                patterns: patterns.into(),
                negate: operator == Operator::StringNotMatch,
            }
        }
        Operator::StringContains | Operator::StringNotContains => Check::StringContains {
            needles: texts(required()?, false)?
                .into_iter()
                .map(String::into_boxed_str)
                .collect(),
            negate: operator == Operator::StringNotContains,
        },
        Operator::StringsInList | Operator::StringsAllowed => Check::StringsAllowed {
            allowed: TextSet::new(texts(required()?, true)?),
        },
        Operator::StringsRequired => Check::StringsRequired {
            required: texts(required()?, true)?
                .into_iter()
                .map(String::into_boxed_str)
                .collect(),
        },
        Operator::IpsInRange => Check::IpsInRange {
            ranges: ip_ranges(required()?)?.into(),
        },
        Operator::IpsEquals | Operator::IpsNotEquals => Check::IpsEquals {
            expected: ip_ranges(required()?)?.into(),
            negate: operator == Operator::IpsNotEquals,
        },
        Operator::NumEquals
        | Operator::NumNotEquals
        | Operator::NumLessThan
        | Operator::NumLessThanEquals
        | Operator::NumGreaterThan
        | Operator::NumGreaterThanEquals => Check::Number {
            comparison: num_comparison(operator),
            expected: number_value(required()?)?,
        },
        Operator::DaysLessThan => Check::DaysLessThan {
            days: number_value(required()?)?,
        },
    };
    Ok(check)
}

pub(crate) fn num_comparison(operator: Operator) -> NumComparison {
    match operator {
        Operator::NumNotEquals => NumComparison::NotEquals,
        Operator::NumLessThan => NumComparison::LessThan,
        Operator::NumLessThanEquals => NumComparison::LessThanEquals,
        Operator::NumGreaterThan => NumComparison::GreaterThan,
        Operator::NumGreaterThanEquals => NumComparison::GreaterThanEquals,
        _ => NumComparison::Equals,
    }
}

fn element_pointers(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => (0..items.len()).map(|index| format!("/{index}")).collect(),
        _ => vec![String::new()],
    }
}

/// Reads a string value or a list of them; numbers and booleans count as their JSON text.
fn texts(value: &Value, empty_list_allowed: bool) -> Result<Vec<String>, Vec<ValueError>> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    if items.is_empty() && !empty_list_allowed {
        return Err(vec![(String::new(), "value list is empty".into())]);
    }
    let mut errors = Vec::new();
    let mut collected = Vec::with_capacity(items.len());
    for (pointer, item) in element_pointers(value).into_iter().zip(items) {
        match scalar_text(item) {
            Some(text) => collected.push(text.into_owned()),
            None => errors.push((pointer, format!("expected a string, found {item}"))),
        }
    }
    if errors.is_empty() {
        Ok(collected)
    } else {
        Err(errors)
    }
}

fn ip_ranges(value: &Value) -> Result<Vec<IpRange>, Vec<ValueError>> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    if items.is_empty() {
        return Err(vec![(String::new(), "value list is empty".into())]);
    }
    let mut errors = Vec::new();
    let mut ranges = Vec::with_capacity(items.len());
    for (pointer, item) in element_pointers(value).into_iter().zip(items) {
        match item.as_str().map(IpRange::parse) {
            Some(Some(range)) => ranges.push(range),
            _ => errors.push((pointer, format!("bad CIDR or IP address {item}"))),
        }
    }
    if errors.is_empty() {
        Ok(ranges)
    } else {
        Err(errors)
    }
}

fn number_value(value: &Value) -> Result<f64, Vec<ValueError>> {
    number_of(value)
        .ok_or_else(|| vec![(String::new(), format!("expected a number, found {value}"))])
}

/// Parses a numeric string; non-finite values (`inf`, `NaN`) are not numbers here.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|number| number.is_finite())
}

/// A JSON number, or a string holding one.
pub(crate) fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => parse_number(text),
        _ => None,
    }
}

/// The text of a scalar: strings as they are, numbers and booleans as their JSON text.
pub(crate) fn scalar_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(text) => Some(Cow::Borrowed(text)),
        Value::Number(number) => Some(Cow::Owned(number.to_string())),
        Value::Bool(true) => Some(Cow::Borrowed("true")),
        Value::Bool(false) => Some(Cow::Borrowed("false")),
        _ => None,
    }
}

/// A set of strings: a linear scan while small (faster than hashing), a hash set beyond.
#[derive(Debug, Clone)]
pub(crate) struct TextSet {
    items: Box<[Box<str>]>,
    hashed: Option<HashSet<Box<str>>>,
}

impl TextSet {
    const LINEAR_SCAN_LIMIT: usize = 12;

    fn new(items: Vec<String>) -> Self {
        let items: Box<[Box<str>]> = items.into_iter().map(String::into_boxed_str).collect();
        let hashed =
            (items.len() > Self::LINEAR_SCAN_LIMIT).then(|| items.iter().cloned().collect());
        TextSet { items, hashed }
    }

    pub(crate) fn contains(&self, text: &str) -> bool {
        match &self.hashed {
            Some(hashed) => hashed.contains(text),
            None => self
                .items
                .iter()
                .any(|item| short_eq(item.as_bytes(), text.as_bytes())),
        }
    }

    pub(crate) fn items(&self) -> &[Box<str>] {
        &self.items
    }
}

/// Byte equality that compares short strings inline: most compared texts (regions, protocol
/// names, tag values) are a few bytes, where a call to `memcmp` costs more than the comparison.
#[inline]
pub(crate) fn short_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && if left.len() <= 16 {
            left.iter().zip(right).all(|(a, b)| a == b)
        } else {
            left == right
        }
}

/// A compiled SCC wildcard: `*` matches any run of characters, `?` exactly one, `\` makes the
/// next character literal; the whole string must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wildcard {
    /// Pieces between `*`s. With no `*` at all there is exactly one piece and it must match the
    /// whole text; otherwise the first is anchored at the start and the last at the end.
    pieces: Box<[Piece]>,
    has_star: bool,
}

/// A run of literal characters and `?`s.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    /// `None` stands for `?`.
    characters: Box<[Option<char>]>,
    /// The literal text when the piece has no `?` (the common case, matched with `str` search).
    literal: Option<Box<str>>,
}

impl Piece {
    fn new(characters: Vec<Option<char>>) -> Self {
        let literal = characters
            .iter()
            .copied()
            .collect::<Option<String>>()
            .map(String::into_boxed_str);
        Piece {
            characters: characters.into(),
            literal,
        }
    }

    /// Length of the text the piece matches at the start of `text`, if it matches there.
    fn match_prefix(&self, text: &str) -> Option<usize> {
        if let Some(literal) = &self.literal {
            let literal = literal.as_bytes();
            return text
                .as_bytes()
                .get(..literal.len())
                .is_some_and(|head| short_eq(head, literal))
                .then_some(literal.len());
        }
        let mut consumed = 0;
        let mut remaining = text.chars();
        for expected in self.characters.iter() {
            let character = remaining.next()?;
            if let Some(expected) = expected
                && *expected != character
            {
                return None;
            }
            consumed += character.len_utf8();
        }
        Some(consumed)
    }

    /// Leftmost match in `text`: (start, end) byte offsets.
    fn find(&self, text: &str) -> Option<(usize, usize)> {
        if let Some(literal) = &self.literal {
            return text
                .find(&**literal)
                .map(|start| (start, start + literal.len()));
        }
        text.char_indices()
            .map(|(start, _)| start)
            .chain(std::iter::once(text.len()))
            .find_map(|start| {
                self.match_prefix(&text[start..])
                    .map(|length| (start, start + length))
            })
    }

    /// Byte offset where the piece must start for it to end exactly at the end of `text`.
    fn match_suffix(&self, text: &str) -> Option<usize> {
        if let Some(literal) = &self.literal {
            let start = text.len().checked_sub(literal.len())?;
            return short_eq(&text.as_bytes()[start..], literal.as_bytes()).then_some(start);
        }
        let count = self.characters.len();
        let start = if count == 0 {
            text.len()
        } else {
            text.char_indices().rev().nth(count - 1)?.0
        };
        (self.match_prefix(&text[start..]) == Some(text.len() - start)).then_some(start)
    }
}

impl Wildcard {
    /// Parses a pattern; the only malformed pattern is one ending in a lone `\`.
    pub(crate) fn parse(pattern: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut current = Vec::new();
        let mut has_star = false;
        let mut characters = pattern.chars();
        while let Some(character) = characters.next() {
            match character {
                '*' => {
                    has_star = true;
                    pieces.push(Piece::new(std::mem::take(&mut current)));
                }
                '?' => current.push(None),
                '\\' => match characters.next() {
                    Some(escaped) => current.push(Some(escaped)),
                    None => {
                        return Err(format!(
                            "bad wildcard \"{pattern}\": it ends with a lone `\\`"
                        ));
                    }
                },
                literal => current.push(Some(literal)),
            }
        }
        pieces.push(Piece::new(current));
        Ok(Wildcard {
            pieces: pieces.into(),
            has_star,
        })
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        let Some((first, rest)) = self.pieces.split_first() else {
            return text.is_empty();
        };
        if !self.has_star {
            return first.match_prefix(text) == Some(text.len());
        }
        let Some((last, middle)) = rest.split_last() else {
            return false;
        };
        let Some(prefix_length) = first.match_prefix(text) else {
            return false;
        };
        let Some(suffix_start) = last.match_suffix(text) else {
            return false;
        };
        if suffix_start < prefix_length {
            return false;
        }
        // Pieces between stars have a fixed length, so taking each at its leftmost position
        // never loses a match.
        let mut window = &text[prefix_length..suffix_start];
        for piece in middle {
            match piece.find(window) {
                Some((_, end)) => window = &window[end..],
                None => return false,
            }
        }
        true
    }
}

/// An IPv4 or IPv6 network, host bits cleared: `10.0.0.1` is `10.0.0.1/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpRange {
    is_v6: bool,
    network: u128,
    prefix: u8,
}

impl IpRange {
    pub(crate) fn parse(text: &str) -> Option<IpRange> {
        let (address_text, prefix_text) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address_text.parse().ok()?;
        let (is_v6, bits, width) = match address {
            IpAddr::V4(v4) => (false, u128::from(u32::from(v4)), 32u8),
            IpAddr::V6(v6) => (true, u128::from(v6), 128u8),
        };
        let prefix = match prefix_text {
            None => width,
            Some(prefix_text) => {
                if prefix_text.is_empty() || !prefix_text.bytes().all(|byte| byte.is_ascii_digit())
                {
                    return None;
                }
                let prefix: u8 = prefix_text.parse().ok()?;
                if prefix > width {
                    return None;
                }
                prefix
            }
        };
        Some(IpRange {
            is_v6,
            network: bits & Self::mask(width, prefix),
            prefix,
        })
    }

    fn mask(width: u8, prefix: u8) -> u128 {
        let all: u128 = if width == 32 {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        all & !all.checked_shr(u32::from(prefix)).unwrap_or(0)
    }

    fn width(self) -> u8 {
        if self.is_v6 { 128 } else { 32 }
    }

    /// Whether every address of `self` lies inside `outer`.
    pub(crate) fn is_inside(self, outer: IpRange) -> bool {
        self.is_v6 == outer.is_v6
            && self.prefix >= outer.prefix
            && self.network & Self::mask(outer.width(), outer.prefix) == outer.network
    }
}

impl Check {
    /// Judges a found property value (`None` when the property is missing).
    pub(crate) fn judge(&self, found: Option<&Value>, now: DateTime<Utc>) -> Judgement {
        use reason::*;
        let found = match found {
            Some(Value::Null) | None => {
                return match self {
                    Check::Unresolved { .. } => {
                        judged(Status::Error, "parameter has no usable value")
                    }
                    Check::IsEmpty => PASSED,
                    _ => MISSING,
                };
            }
            Some(found) => found,
        };
        match self {
            Check::Unresolved { .. } => judged(Status::Error, "parameter has no usable value"),
            Check::IsEmpty => verdict(is_empty_value(found), NOT_EMPTY),
            Check::IsNotEmpty => verdict(!is_empty_value(found), EMPTY),
            Check::IsBool { expected } => match boolean_of(found) {
                Some(flag) => verdict(
                    flag == *expected,
                    if *expected { NOT_TRUE } else { NOT_FALSE },
                ),
                None => judged(Status::Error, NOT_BOOLEAN),
            },
            Check::StringEquals { expected, negate } => match scalar_text(found) {
                Some(text) => {
                    let equal = expected.contains(&text);
                    verdict(equal != *negate, if *negate { EQUAL } else { NOT_EQUAL })
                }
                None => judged(Status::Error, NOT_SCALAR),
            },
            Check::StringMatch { patterns, negate } => match scalar_text(found) {
                Some(text) => {
                    let matched = patterns.iter().any(|pattern| pattern.matches(&text));
                    verdict(matched != *negate, if *negate { MATCH } else { NO_MATCH })
                }
                None => judged(Status::Error, NOT_SCALAR),
            },
            Check::StringContains { needles, negate } => match scalar_text(found) {
                Some(text) => {
                    let contained = needles.iter().any(|needle| text.contains(&**needle));
                    verdict(
                        contained != *negate,
                        if *negate { CONTAINED } else { NOT_CONTAINED },
                    )
                }
                None => judged(Status::Error, NOT_SCALAR),
            },
            Check::StringsAllowed { allowed } => {
                match for_each_text(found, |text| allowed.contains(text)) {
                    Some(all_allowed) => verdict(all_allowed, NOT_ALLOWED),
                    None => judged(Status::Error, NOT_LIST),
                }
            }
            Check::StringsRequired { required } => {
                let Some(present) = texts_of(found) else {
                    return judged(Status::Error, NOT_LIST);
                };
                let all_present = required
                    .iter()
                    .all(|needed| present.iter().any(|text| **text == **needed));
                verdict(all_present, NOT_REQUIRED)
            }
            Check::IpsInRange { ranges } => {
                let mut all_inside = true;
                let parsed_all = for_each_text(found, |text| match IpRange::parse(text) {
                    Some(address) => {
                        all_inside &= ranges.iter().any(|range| address.is_inside(*range));
                        true
                    }
                    None => false,
                });
                match parsed_all {
                    Some(true) => verdict(all_inside, OUT_OF_RANGE),
                    _ => judged(Status::Error, NOT_IP),
                }
            }
            Check::IpsEquals { expected, negate } => {
                match found.as_str().and_then(IpRange::parse) {
                    Some(address) => {
                        let equal = expected.contains(&address);
                        verdict(
                            equal != *negate,
                            if *negate { IP_EQUAL } else { IP_NOT_EQUAL },
                        )
                    }
                    None => judged(Status::Error, NOT_IP),
                }
            }
            Check::Number {
                comparison,
                expected,
            } => match number_of(found) {
                Some(number) => verdict(comparison.holds(number, *expected), NUMBER_COMPARISON),
                None => judged(Status::Error, NOT_NUMBER),
            },
            Check::DaysLessThan { days } => match age_in_days(found, now) {
                Some(age) => verdict(age < *days, TOO_OLD),
                None => judged(Status::Error, NOT_DATE),
            },
        }
    }
}

/// The symbol of a text that no rule of the group mentions: equal to no expected text.
pub(crate) const NO_SYMBOL: u32 = u32::MAX;

/// What a resource's config slot holds as texts, interned against the texts its group's rules
/// expect (computed once per resource, shared by every rule reading the slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum SlotTexts {
    /// Not computed: no rule of the group compares this slot's texts.
    #[default]
    Unknown,
    /// A string, number or boolean, as its symbol.
    Scalar(u32),
    /// A list of scalars: their symbols, at `start..end` of the view's symbol table.
    List(u32, u32),
    /// Neither (an object, or a list with a non-scalar element).
    NotTexts,
}

/// What a resource's config slot holds as IP addresses, parsed once per resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum SlotAddresses {
    /// Not computed: no rule of the group reads this slot as addresses.
    #[default]
    Unknown,
    /// Every element parsed: at `start..end` of the view's address table.
    Parsed(u32, u32),
    /// Some element is not an address or CIDR.
    Unparsable,
}

/// A slot's pre-digested forms and the tables they index.
pub(crate) struct SlotFacts<'a> {
    pub texts: SlotTexts,
    pub addresses: SlotAddresses,
    pub symbols: &'a [u32],
    pub ranges: &'a [IpRange],
}

impl Check {
    /// As [`Check::judge`], using a slot's pre-digested forms where the check has one: texts
    /// compared as interned symbols (`expected_symbols` are the check's own texts, interned in
    /// the same table) and addresses parsed once per resource. Gives exactly what `judge` gives.
    pub(crate) fn judge_with_facts(
        &self,
        found: Option<&Value>,
        expected_symbols: &[u32],
        facts: &SlotFacts<'_>,
        now: DateTime<Utc>,
    ) -> Judgement {
        use reason::*;
        if matches!(found, None | Some(Value::Null)) {
            return self.judge(found, now);
        }
        let slot_symbols = |start: u32, end: u32| {
            facts
                .symbols
                .get(start as usize..end as usize)
                .unwrap_or_default()
        };
        let expected = |symbol: u32| symbol != NO_SYMBOL && expected_symbols.contains(&symbol);
        match (self, facts.texts, facts.addresses) {
            (Check::StringEquals { negate, .. }, SlotTexts::Scalar(symbol), _) => verdict(
                expected(symbol) != *negate,
                if *negate { EQUAL } else { NOT_EQUAL },
            ),
            (Check::StringEquals { .. }, SlotTexts::List(..) | SlotTexts::NotTexts, _) => {
                judged(Status::Error, NOT_SCALAR)
            }
            (Check::StringsAllowed { .. }, SlotTexts::Scalar(symbol), _) => {
                verdict(expected(symbol), NOT_ALLOWED)
            }
            (Check::StringsAllowed { .. }, SlotTexts::List(start, end), _) => verdict(
                slot_symbols(start, end)
                    .iter()
                    .all(|symbol| expected(*symbol)),
                NOT_ALLOWED,
            ),
            (Check::StringsRequired { .. }, SlotTexts::Scalar(symbol), _) => verdict(
                expected_symbols.iter().all(|needed| *needed == symbol),
                NOT_REQUIRED,
            ),
            (Check::StringsRequired { .. }, SlotTexts::List(start, end), _) => {
                let present = slot_symbols(start, end);
                verdict(
                    expected_symbols
                        .iter()
                        .all(|needed| present.contains(needed)),
                    NOT_REQUIRED,
                )
            }
            (
                Check::StringsAllowed { .. } | Check::StringsRequired { .. },
                SlotTexts::NotTexts,
                _,
            ) => judged(Status::Error, NOT_LIST),
            (Check::IpsInRange { ranges }, _, SlotAddresses::Parsed(start, end)) => {
                let addresses = facts
                    .ranges
                    .get(start as usize..end as usize)
                    .unwrap_or_default();
                verdict(
                    addresses
                        .iter()
                        .all(|address| ranges.iter().any(|range| address.is_inside(*range))),
                    OUT_OF_RANGE,
                )
            }
            (Check::IpsInRange { .. }, _, SlotAddresses::Unparsable) => {
                judged(Status::Error, NOT_IP)
            }
            _ => self.judge(found, now),
        }
    }

    /// The texts a check compares against, for interning (empty for other checks).
    pub(crate) fn expected_texts(&self) -> &[Box<str>] {
        match self {
            Check::StringEquals { expected, .. } => expected.items(),
            Check::StringsAllowed { allowed } => allowed.items(),
            Check::StringsRequired { required } => required,
            _ => &[],
        }
    }

    /// Whether the check reads its property as addresses.
    pub(crate) fn reads_addresses(&self) -> bool {
        matches!(self, Check::IpsInRange { .. })
    }
}

/// Calls `each` with the text of a scalar property or of each element of a list; `false` when
/// some element is not a scalar (the property is then not a list of texts).
pub(crate) fn each_text(value: &Value, mut each: impl FnMut(&str)) -> bool {
    match value {
        Value::Array(items) => {
            for item in items {
                match scalar_text(item) {
                    Some(text) => each(&text),
                    None => return false,
                }
            }
            true
        }
        single => match scalar_text(single) {
            Some(text) => {
                each(&text);
                true
            }
            None => false,
        },
    }
}

fn verdict(holds: bool, failure_reason: &'static str) -> Judgement {
    if holds {
        PASSED
    } else {
        judged(Status::Failure, failure_reason)
    }
}

/// `""`, `[]` and `{}` are empty (missing and null are handled before).
pub(crate) fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(members) => members.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

/// A JSON boolean or the string `true` / `false` in any case.
pub(crate) fn boolean_of(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Some(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Calls `keep_going` on each text of a scalar or list property; `None` when an element is not a
/// scalar, else whether every call returned true (stopping at the first false).
fn for_each_text(value: &Value, mut keep_going: impl FnMut(&str) -> bool) -> Option<bool> {
    match value {
        Value::Array(items) => {
            let mut all = true;
            for item in items {
                let text = scalar_text(item)?;
                if all && !keep_going(&text) {
                    all = false;
                }
            }
            Some(all)
        }
        single => Some(keep_going(&scalar_text(single)?)),
    }
}

fn texts_of(value: &Value) -> Option<Vec<Cow<'_, str>>> {
    match value {
        Value::Array(items) => items.iter().map(scalar_text).collect(),
        single => Some(vec![scalar_text(single)?]),
    }
}

/// Days between a timestamp or date and `now`; a number is taken as an age in days already.
pub(crate) fn age_in_days(value: &Value, now: DateTime<Utc>) -> Option<f64> {
    const MILLISECONDS_PER_DAY: f64 = 86_400_000.0;
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => {
            if let Ok(timestamp) = DateTime::parse_from_rfc3339(text) {
                let age = now.signed_duration_since(timestamp.with_timezone(&Utc));
                return Some(age.num_milliseconds() as f64 / MILLISECONDS_PER_DAY);
            }
            if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                let midnight = date.and_hms_opt(0, 0, 0)?.and_utc();
                let age = now.signed_duration_since(midnight);
                return Some(age.num_milliseconds() as f64 / MILLISECONDS_PER_DAY);
            }
            parse_number(text)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
            .expect("valid")
            .with_timezone(&Utc)
    }

    fn judge(operator: Operator, value: Value, found: Value) -> Status {
        compile_check(operator, Some(&value))
            .expect("compiles")
            .judge(Some(&found), now())
            .status
    }

    #[test]
    fn wildcards_match_whole_strings() {
        let cases = [
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxcyyb", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*?", "", false),
            ("*", "", true),
            ("??", "é€", true),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("*ab*ab", "abab", true),
            ("ab*ba", "aba", false),
            ("*a?c*", "xxabcxx", true),
            ("x*?y", "xy", false),
            ("x*?y", "xzy", true),
        ];
        for (pattern, text, expected) in cases {
            let wildcard = Wildcard::parse(pattern).expect("valid pattern");
            assert_eq!(wildcard.matches(text), expected, "{pattern} on {text}");
        }
        assert!(Wildcard::parse("abc\\").is_err());
    }

    #[test]
    fn ip_ranges_normalise_and_nest() {
        let host = IpRange::parse("10.0.0.1").expect("address");
        assert_eq!(Some(host), IpRange::parse("10.0.0.1/32"));
        assert_eq!(IpRange::parse("10.1.2.3/8"), IpRange::parse("10.0.0.0/8"));
        assert!(host.is_inside(IpRange::parse("10.0.0.0/8").expect("cidr")));
        assert!(!host.is_inside(IpRange::parse("11.0.0.0/8").expect("cidr")));
        assert!(host.is_inside(IpRange::parse("0.0.0.0/0").expect("cidr")));
        assert!(!host.is_inside(IpRange::parse("::/0").expect("v6")));
        assert!(
            IpRange::parse("2001:db8::1")
                .expect("v6")
                .is_inside(IpRange::parse("2001:db8::/32").expect("v6"))
        );
        for bad in [
            "10.0.0.1/33",
            "10.0.0.256",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "",
            "::1/129",
        ] {
            assert_eq!(IpRange::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn operators_judge_found_values() {
        assert_eq!(
            judge(Operator::StringEquals, json!(["a", "b"]), json!("b")),
            Status::Pass
        );
        assert_eq!(
            judge(Operator::StringNotEquals, json!(["a", "b"]), json!("b")),
            Status::Failure
        );
        assert_eq!(
            judge(Operator::StringEquals, json!("443"), json!(443)),
            Status::Pass
        );
        assert_eq!(
            judge(Operator::StringEquals, json!("a"), json!({"a": 1})),
            Status::Error
        );
        assert_eq!(
            judge(Operator::StringsAllowed, json!(["a", "b"]), json!([])),
            Status::Pass
        );
        assert_eq!(
            judge(Operator::StringsAllowed, json!(["a"]), json!("a")),
            Status::Pass
        );
        assert_eq!(
            judge(
                Operator::StringsRequired,
                json!(["a", "b"]),
                json!(["b", "a", "c"])
            ),
            Status::Pass
        );
        assert_eq!(
            judge(
                Operator::IpsInRange,
                json!(["10.0.0.0/8"]),
                json!(["10.1.1.1", "bad"])
            ),
            Status::Error
        );
        assert_eq!(
            judge(Operator::IpsEquals, json!("10.0.0.1/32"), json!("10.0.0.1")),
            Status::Pass
        );
        assert_eq!(
            judge(Operator::NumLessThan, json!("10"), json!("9.5")),
            Status::Pass
        );
        assert_eq!(
            judge(Operator::NumLessThan, json!(10), json!("ten")),
            Status::Error
        );
        assert_eq!(
            judge(Operator::DaysLessThan, json!(30), json!("2026-02-15")),
            Status::Pass
        );
        assert_eq!(
            judge(
                Operator::DaysLessThan,
                json!(30),
                json!("2025-02-15T00:00:00Z")
            ),
            Status::Failure
        );
        assert_eq!(
            judge(Operator::IsTrue, json!(null), json!("TRUE")),
            Status::Pass
        );
        assert_eq!(
            judge(Operator::IsFalse, json!(null), json!(0)),
            Status::Error
        );
    }

    #[test]
    fn missing_property_fails_everything_but_is_empty() {
        for operator in Operator::ALL {
            let value = match operator {
                Operator::IpsInRange | Operator::IpsEquals | Operator::IpsNotEquals => {
                    json!("10.0.0.0/8")
                }
                _ => json!("1"),
            };
            let check = compile_check(*operator, Some(&value)).expect("compiles");
            let expected = if *operator == Operator::IsEmpty {
                Status::Pass
            } else {
                Status::Failure
            };
            assert_eq!(check.judge(None, now()).status, expected, "{operator}");
            assert_eq!(
                check.judge(Some(&Value::Null), now()).status,
                expected,
                "{operator}"
            );
        }
    }

    #[test]
    fn bad_values_are_reported_per_element() {
        let errors = compile_check(
            Operator::IpsInRange,
            Some(&json!(["10.0.0.0/8", "nope", "1.2.3.4/40"])),
        )
        .expect_err("bad CIDRs");
        let pointers: Vec<&str> = errors.iter().map(|(pointer, _)| pointer.as_str()).collect();
        assert_eq!(pointers, ["/1", "/2"]);
        assert!(compile_check(Operator::NumEquals, None).is_err());
        assert!(compile_check(Operator::StringEquals, Some(&json!([]))).is_err());
        assert!(compile_check(Operator::StringMatch, Some(&json!(["ok*", "bad\\"]))).is_err());
    }
}
