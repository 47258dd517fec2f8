//! A small XML tree for AWS answers (query protocol, EC2, S3): elements by local name, with
//! their text and children. AWS documents are small (one page of one API call), so a tree is
//! simpler to navigate than streaming events.

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use serde_json::{Map, Value};

use crate::snake_case;

/// One element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XmlNode {
    /// Local name (namespace prefix dropped).
    pub name: String,
    /// Concatenated text content (entities resolved).
    pub text: String,
    /// Child elements, in document order.
    pub children: Vec<XmlNode>,
}

impl XmlNode {
    /// Parses a document and returns its root element.
    pub fn parse(text: &str) -> Result<XmlNode, String> {
        let mut reader = Reader::from_str(text);
        let mut stack: Vec<XmlNode> = vec![XmlNode::default()];
        loop {
            let event = reader
                .read_event()
                .map_err(|error| format!("XML at byte {}: {error}", reader.buffer_position()))?;
            match event {
                Event::Start(start) => stack.push(XmlNode {
                    name: local(start.local_name().as_ref()),
                    ..XmlNode::default()
                }),
                Event::Empty(start) => {
                    let node = XmlNode {
                        name: local(start.local_name().as_ref()),
                        ..XmlNode::default()
                    };
                    if let Some(parent) = stack.last_mut() {
                        parent.children.push(node);
                    }
                }
                Event::End(_) => {
                    let node = stack.pop().ok_or("XML: unbalanced end tag")?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => return Err("XML: unbalanced end tag".into()),
                    }
                }
                Event::Text(text) => {
                    if let Some(node) = stack.last_mut() {
                        node.text.push_str(&text.xml10_content());
                    }
                }
                Event::CData(data) => {
                    if let Some(node) = stack.last_mut() {
                        node.text.push_str(&data.xml10_content());
                    }
                }
                Event::GeneralRef(reference) => {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(character)) => character.to_string(),
                        _ => resolve_predefined_entity(&reference)
                            .map(str::to_owned)
                            .unwrap_or_default(),
                    };
                    if let Some(node) = stack.last_mut() {
                        node.text.push_str(&resolved);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        let mut document = stack.pop().ok_or("XML: empty document")?;
        if !stack.is_empty() {
            return Err("XML: unclosed element".into());
        }
        document
            .children
            .pop()
            .ok_or_else(|| "XML: no root element".to_owned())
    }

    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&XmlNode> {
        self.children.iter().find(|child| child.name == name)
    }

    /// The children named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a XmlNode> {
        self.children.iter().filter(move |child| child.name == name)
    }

    /// The element at a path of child names.
    pub fn at(&self, path: &[&str]) -> Option<&XmlNode> {
        path.iter().try_fold(self, |node, name| node.child(name))
    }

    /// The trimmed text at a path, `None` when missing or empty.
    pub fn text_at(&self, path: &[&str]) -> Option<String> {
        self.at(path)
            .map(|node| node.text.trim().to_owned())
            .filter(|text| !text.is_empty())
    }

    /// The text at a path as a boolean.
    pub fn bool_at(&self, path: &[&str]) -> Option<bool> {
        match self.text_at(path)?.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// The text at a path as an integer.
    pub fn int_at(&self, path: &[&str]) -> Option<i64> {
        self.text_at(path)?.parse().ok()
    }

    /// The list items of a wrapper element (`<item>` / `<member>` children, or all children).
    pub fn items<'a>(&'a self, path: &[&str]) -> Vec<&'a XmlNode> {
        match self.at(path) {
            Some(wrapper) => wrapper.children.iter().collect(),
            None => Vec::new(),
        }
    }

    /// Converts to JSON in the SDK's snake_case: a wrapper of `item` / `member` elements (or of
    /// several elements with one name) becomes an array, text `true` / `false` a boolean, other
    /// text a string, an empty element `null`. Numbers stay strings: ids such as account numbers
    /// look numeric, so callers convert the fields they know are numbers.
    pub fn to_json(&self) -> Value {
        if self.children.is_empty() {
            let text = self.text.trim();
            return match text {
                "" => Value::Null,
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::String(text.to_owned()),
            };
        }
        let first = &self.children[0].name;
        let same_name = self.children.iter().all(|child| &child.name == first);
        if same_name && (first == "item" || first == "member" || self.children.len() > 1) {
            return Value::Array(self.children.iter().map(XmlNode::to_json).collect());
        }
        let mut map = Map::new();
        for child in &self.children {
            map.insert(snake_case(&child.name), child.to_json());
        }
        Value::Object(map)
    }
}

fn local(name: &str) -> String {
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_become_trees_and_json() {
        let node = XmlNode::parse(
            r#"<?xml version="1.0"?><R xmlns="x"><a>1 &amp; 2</a><list><member>p</member></list><e/><b>true</b></R>"#,
        )
        .expect("parses");
        assert_eq!(node.text_at(&["a"]).as_deref(), Some("1 & 2"));
        assert_eq!(
            node.to_json(),
            json!({"a": "1 & 2", "list": ["p"], "e": null, "b": true})
        );
        assert!(XmlNode::parse("<a><b></a>").is_err());
    }
}
