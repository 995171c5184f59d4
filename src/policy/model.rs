//! The policy file as written, with no validation.
//!
//! A file is read as a spanned YAML tree ([`Node`]) and turned into
//! [`RuleDoc`]s by hand rather than by derived serde structs: a derived
//! struct stops the whole file at the first unknown key or mistyped field,
//! while walking the tree reports every such mistake, each at its own line
//! and column. Everything checked semantically (method names, caller types,
//! modes, selectors, operators) is kept as spanned text for the same reason.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

/// One rule, as written. Built from the file's [`Node`] tree by the
/// `parse` module, which reports every unknown key and every missing or
/// mistyped field, not only the first. A field that was missing or mistyped
/// is `None` here, already reported, so the compiler can still check the
/// rest of the rule.
#[derive(Debug)]
pub struct RuleDoc {
    /// Where the rule's map starts, for problems about the rule as a whole.
    pub at: Location,
    /// Unique name of the rule across all files.
    pub id: Option<Spanned<String>>,
    /// Free text for humans and for `explain`.
    pub description: Option<String>,
    /// `match.methods`: HTTP methods, upper-case.
    pub methods: Option<Spanned<Vec<Spanned<String>>>>,
    /// `match.path`: the path template.
    pub path: Option<Spanned<String>>,
    /// Caller types the rule admits (`VISITOR`, `MEMBER`, `USER`).
    pub callers: Option<Spanned<Vec<Spanned<String>>>>,
    /// `elevate` or `pass_through`.
    pub mode: Option<Spanned<String>>,
    /// Identity sources the rule accepts (`access_token`, `signed_instance`).
    pub identity: Option<Spanned<Vec<Spanned<String>>>>,
    /// Conditions, kept as a tree: its keys decide how the values are read.
    pub when: Option<Spanned<Node>>,
    /// Query parameters an elevated request may carry besides those the
    /// conditions name.
    pub allow_query: Option<Spanned<Vec<Spanned<String>>>>,
    /// Warning codes silenced for this rule.
    pub allow_warnings: Option<Spanned<Vec<Spanned<String>>>>,
}

/// A YAML node of any shape, with the location of every key and value.
///
/// Mapping entries keep their YAML order, so that conditions are evaluated
/// (and later traced) in the order the author wrote them.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// A positive integer beyond `i64`.
    UInt(u64),
    /// A floating-point number.
    Float(f64),
    /// A string scalar.
    String(String),
    /// A sequence.
    Seq(Vec<Spanned<Node>>),
    /// A mapping, in document order.
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl Node {
    /// A short name of the node's kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) | Node::UInt(_) | Node::Float(_) => "a number",
            Node::String(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a map",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(i64::try_from(v).map_or(Node::UInt(v), Node::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}
