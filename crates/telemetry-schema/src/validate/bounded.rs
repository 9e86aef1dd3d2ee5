//! The reference path in bounded memory: what [`super::decode_whole`] computes, without the
//! whole document as one JSON value and without every JSON Schema error at once.
//!
//! A hostile document within the size limit can otherwise cost hundreds of times its size: a
//! JSON value costs 32 bytes or more per node however short its text (`0,` is two bytes; an
//! object member with its key, about a hundred), and the validator gathers every error before
//! returning any, a few hundred bytes each, several for every node that is wrong (4 MiB of
//! `{},` in `events` is 2.8 million errors). Three measures bound both:
//!
//! * **Shapes** ([`Shapes`]): from the JSON Schema of the declared version, which containers a
//!   valid document may have where, with which members and how many (an over-approximation:
//!   whatever the schema accepts, the shape allows). What no valid document can have is kept
//!   only in part: the containers where the shape has none keep at most [`GARBAGE_NODES`] nodes
//!   in all (per unit, see below), an object at most [`UNKNOWN_MEMBERS`] members more than its
//!   shape allows (the first by name: what a message shows of it is the same). The part kept
//!   is still invalid for the same reason, whatever repeated members follow, so the verdict is
//!   the reference's; only what lies beyond goes unexamined, and the error says "at least".
//!   Short of these limits (far beyond any plausible payload), the list and count are the
//!   reference's.
//! * **Streams**: the arrays of the shape (`events`, `privacy.dp`) are not built. Each item is
//!   built alone (one *unit*), checked against the schema inside a small valid envelope, its
//!   errors kept (the first [`MAX_REPORTED_VIOLATIONS`]) and counted, decoded into its Rust
//!   type while everything so far is valid, then dropped. The rest of the document (the
//!   *skeleton*, another unit) is validated with a marker in place of each stream, and the
//!   items' errors are spliced in where the markers' errors are: the same list, in the same
//!   order, as the reference's.
//! * **A ceiling**: once a stream has [`MAX_COUNTED_VIOLATIONS`] errors, its remaining items are
//!   read (for syntax) but not checked; the error then says "at least".
//!
//! Syntax errors are serde_json's own, at the same line and column: the same parser reads the
//! same text, with visitors that accept everything (kept or not).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::{
    ENVELOPE_VERSIONS, MAX_COUNTED_VIOLATIONS, MAX_REPORTED_VIOLATIONS, MESSAGE_CHARS,
    ValidatedPayload, ValidationError, Violation, declared_version, envelope_validator, malformed,
    truncate,
};
use crate::envelope::{Envelope, Event, FieldPrivacy};

/// Nodes kept, per unit (the skeleton, or one item), of containers no valid document has where
/// they are. Enough for any message (one shows at most [`MESSAGE_CHARS`] characters of a value).
pub(super) const GARBAGE_NODES: usize = 1024;
/// Distinct members kept beyond what an object's schema allows: any member but its named ones
/// where it allows no other, else beyond `maxProperties`.
pub(super) const UNKNOWN_MEMBERS: usize = 64;

type ShapeId = usize;
/// Nothing is valid here (`false`).
const NEVER: ShapeId = 0;
/// Scalars only: no container is valid here.
const SCALAR: ShapeId = 1;
/// Anything may be valid here.
const ANY: ShapeId = 2;

/// Which containers a valid value at one position may be.
#[derive(Debug, Clone, PartialEq)]
struct Shape {
    /// Some value is valid here (`false` for the schema `false`).
    valid: bool,
    /// `None`: no object is valid here.
    object: Option<ObjectShape>,
    /// `None`: no array is valid here.
    array: Option<ArrayShape>,
}

#[derive(Debug, Clone, PartialEq)]
struct ObjectShape {
    /// Named members (`properties`).
    props: BTreeMap<String, ShapeId>,
    /// Any other member (`patternProperties`, any key assumed to match, and
    /// `additionalProperties`); `None`: no other member is valid.
    other: Option<ShapeId>,
    /// `maxProperties`.
    max_members: Option<usize>,
}

impl ObjectShape {
    fn member(&self, key: &str) -> ShapeId {
        self.props.get(key).copied().or(self.other).unwrap_or(NEVER)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct ArrayShape {
    items: ShapeId,
    /// `maxItems`.
    max_items: Option<usize>,
}

/// A position (by member names from the root) whose arrays are read item by item.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StreamPath {
    /// Member names from the root.
    pub(super) names: Vec<String>,
    /// The JSON Pointer of the array, e.g. `/privacy/dp`.
    pub(super) pointer: String,
    /// The shape of its items.
    shape: ShapeId,
    /// `maxItems`.
    max_items: Option<usize>,
}

/// Member names from the root that lead to a stream, as a tree.
#[derive(Debug, Clone, Default)]
struct Trie {
    children: BTreeMap<String, usize>,
    /// The stream whose array is here.
    stream: Option<usize>,
    /// Every stream at or below this node (reset when a new value starts here).
    below: Vec<usize>,
}

/// The shapes of one schema.
#[derive(Debug)]
pub(super) struct Shapes {
    nodes: Vec<Shape>,
    root: ShapeId,
    pub(super) streams: Vec<StreamPath>,
    trie: Vec<Trie>,
}

impl Shapes {
    /// The shapes of `schema` (a JSON Schema document; `$ref`s are local JSON Pointers).
    pub(super) fn new(schema: &Value) -> Self {
        let any_object = ObjectShape {
            props: BTreeMap::new(),
            other: Some(ANY),
            max_members: None,
        };
        let mut builder = Builder {
            document: schema,
            nodes: vec![
                Shape {
                    valid: false,
                    object: None,
                    array: None,
                },
                Shape {
                    valid: true,
                    object: None,
                    array: None,
                },
                Shape {
                    valid: true,
                    object: Some(any_object),
                    array: Some(ArrayShape {
                        items: ANY,
                        max_items: None,
                    }),
                },
            ],
            resolving: Vec::new(),
        };
        let root = builder.of(schema);
        let mut shapes = Shapes {
            nodes: builder.nodes,
            root,
            streams: Vec::new(),
            trie: vec![Trie::default()],
        };
        let mut names = Vec::new();
        shapes.find_streams(root, 0, &mut names);
        shapes
    }

    fn node(&self, id: ShapeId) -> &Shape {
        &self.nodes[id]
    }

    /// Arrays reachable from the root through named members only.
    fn find_streams(&mut self, at: ShapeId, trie: usize, names: &mut Vec<String>) {
        // The envelope is a handful of levels deep; a deeper chain is a cycle (a recursive
        // schema), where nothing is streamed.
        if names.len() > 16 || at == ANY {
            return;
        }
        if !names.is_empty()
            && let Some(array) = self.nodes[at].array
        {
            let id = self.streams.len();
            let pointer = names.iter().fold(String::new(), |mut p, n| {
                p.push('/');
                p.push_str(&n.replace('~', "~0").replace('/', "~1"));
                p
            });
            self.streams.push(StreamPath {
                names: names.clone(),
                pointer,
                shape: array.items,
                max_items: array.max_items,
            });
            self.trie[trie].stream = Some(id);
        }
        let props = self.nodes[at]
            .object
            .as_ref()
            .map(|o| o.props.clone())
            .unwrap_or_default();
        for (name, child) in props {
            let before = self.streams.len();
            let node = self.trie.len();
            self.trie.push(Trie::default());
            names.push(name.clone());
            self.find_streams(child, node, names);
            names.pop();
            if self.streams.len() == before {
                self.trie.pop();
            } else {
                self.trie[trie].children.insert(name, node);
            }
        }
        let below: Vec<usize> = self.trie[trie]
            .children
            .values()
            .flat_map(|&c| self.trie[c].below.clone())
            .chain(self.trie[trie].stream)
            .collect();
        self.trie[trie].below = below;
    }

    /// Every object position reachable from the root whose members are not bounded (open and
    /// without `maxProperties`), and every array position without `maxItems`, as JSON Pointers
    /// with `*` for any member or item. Empty for the committed schemas (tested): the bounded
    /// parse then keeps a bounded number of nodes per unit.
    #[cfg(test)]
    pub(super) fn unbounded_positions(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.walk_unbounded(self.root, &mut String::new(), &mut out, 0);
        out
    }

    #[cfg(test)]
    fn walk_unbounded(&self, at: ShapeId, path: &mut String, out: &mut Vec<String>, depth: usize) {
        if at == ANY {
            out.push(format!("{path} (anything)"));
            return;
        }
        if depth > 16 {
            out.push(format!("{path} (too deep)"));
            return;
        }
        let shape = self.node(at);
        if let Some(o) = &shape.object {
            if o.other.is_some() && o.max_members.is_none() {
                out.push(format!("{path} (members)"));
            }
            for (name, &child) in &o.props {
                let len = path.len();
                path.push('/');
                path.push_str(name);
                self.walk_unbounded(child, path, out, depth + 1);
                path.truncate(len);
            }
            if let Some(other) = o.other {
                let len = path.len();
                path.push_str("/*");
                self.walk_unbounded(other, path, out, depth + 1);
                path.truncate(len);
            }
        }
        if let Some(a) = &shape.array {
            if a.max_items.is_none() {
                out.push(format!("{path} (items)"));
            }
            let len = path.len();
            path.push_str("/#");
            self.walk_unbounded(a.items, path, out, depth + 1);
            path.truncate(len);
        }
    }
}

struct Builder<'s> {
    document: &'s Value,
    nodes: Vec<Shape>,
    /// `$ref`s being resolved (a cycle makes its shape [`ANY`]).
    resolving: Vec<&'s str>,
}

impl<'s> Builder<'s> {
    fn add(&mut self, shape: Shape) -> ShapeId {
        if let Some(i) = self.nodes.iter().position(|n| *n == shape) {
            return i;
        }
        self.nodes.push(shape);
        self.nodes.len() - 1
    }

    fn of(&mut self, schema: &'s Value) -> ShapeId {
        let Value::Object(s) = schema else {
            return match schema {
                Value::Bool(false) => NEVER,
                // `true`, or not a schema at all: assume anything.
                _ => ANY,
            };
        };
        let mut shape = self.own(s);
        if let Some(reference) = s.get("$ref") {
            let target = match reference.as_str() {
                Some(r) if !self.resolving.contains(&r) => {
                    let pointer = r.strip_prefix('#');
                    match pointer.and_then(|p| self.document.pointer(p)) {
                        Some(target) => {
                            self.resolving.push(r);
                            let id = self.of(target);
                            self.resolving.pop();
                            id
                        }
                        None => ANY,
                    }
                }
                _ => ANY,
            };
            shape = self.intersect(shape, target);
        }
        if let Some(Value::Array(all)) = s.get("allOf") {
            for branch in all {
                let b = self.of(branch);
                shape = self.intersect(shape, b);
            }
        }
        for keyword in ["anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = s.get(keyword) {
                let mut union = NEVER;
                for branch in branches {
                    let b = self.of(branch);
                    union = self.union(union, b);
                }
                shape = self.intersect(shape, union);
            }
        }
        shape
    }

    /// The shape the schema's own keywords give (not `$ref` or the combinators). Keywords not
    /// read here only ever restrict a value further, so ignoring them over-approximates.
    fn own(&mut self, s: &'s Map<String, Value>) -> ShapeId {
        const READ: [&str; 12] = [
            "type",
            "const",
            "enum",
            "properties",
            "patternProperties",
            "additionalProperties",
            "maxProperties",
            "items",
            "prefixItems",
            "additionalItems",
            "maxItems",
            "unevaluatedProperties",
        ];
        if !READ.iter().any(|k| s.contains_key(*k)) {
            return ANY;
        }
        let types: Option<Vec<&str>> = match s.get("type") {
            Some(Value::String(t)) => Some(vec![t.as_str()]),
            Some(Value::Array(ts)) => Some(ts.iter().filter_map(Value::as_str).collect()),
            _ => None,
        };
        let allows = |t: &str| types.as_ref().is_none_or(|ts| ts.contains(&t));
        let (mut object_ok, mut array_ok) = (allows("object"), allows("array"));
        if let Some(c) = s.get("const") {
            object_ok &= c.is_object();
            array_ok &= c.is_array();
        }
        if let Some(Value::Array(values)) = s.get("enum") {
            object_ok &= values.iter().any(Value::is_object);
            array_ok &= values.iter().any(Value::is_array);
        }
        let object = if object_ok {
            let mut props = BTreeMap::new();
            if let Some(Value::Object(p)) = s.get("properties") {
                for (name, schema) in p {
                    let id = self.of(schema);
                    props.insert(name.clone(), id);
                }
            }
            // Any key may match a pattern (patterns are not evaluated here: more is allowed).
            let mut other = match s.get("additionalProperties") {
                None => ANY,
                Some(schema) => self.of(schema),
            };
            if let Some(Value::Object(patterns)) = s.get("patternProperties") {
                for schema in patterns.values() {
                    let id = self.of(schema);
                    other = self.union(other, id);
                }
            }
            let other = self.node(other).valid.then_some(other);
            Some(ObjectShape {
                props,
                other,
                max_members: s
                    .get("maxProperties")
                    .and_then(Value::as_u64)
                    .map(saturating_usize),
            })
        } else {
            None
        };
        let array = if array_ok {
            let mut items = match s.get("items") {
                None => ANY,
                Some(Value::Array(tuple)) => {
                    let mut union = match s.get("additionalItems") {
                        None => ANY,
                        Some(schema) => self.of(schema),
                    };
                    for schema in tuple {
                        let id = self.of(schema);
                        union = self.union(union, id);
                    }
                    union
                }
                Some(schema) => self.of(schema),
            };
            if let Some(Value::Array(prefix)) = s.get("prefixItems") {
                for schema in prefix {
                    let id = self.of(schema);
                    items = self.union(items, id);
                }
            }
            Some(ArrayShape {
                items,
                max_items: s
                    .get("maxItems")
                    .and_then(Value::as_u64)
                    .map(saturating_usize),
            })
        } else {
            None
        };
        self.add(Shape {
            valid: true,
            object,
            array,
        })
    }

    fn node(&self, id: ShapeId) -> &Shape {
        &self.nodes[id]
    }

    fn union(&mut self, a: ShapeId, b: ShapeId) -> ShapeId {
        if a == b || b == NEVER || a == ANY {
            return a;
        }
        if a == NEVER || b == ANY {
            return b;
        }
        let (x, y) = (self.node(a).clone(), self.node(b).clone());
        let object = match (&x.object, &y.object) {
            (None, None) => None,
            (Some(o), None) | (None, Some(o)) => Some(o.clone()),
            (Some(p), Some(q)) => {
                let names: Vec<String> = p.props.keys().chain(q.props.keys()).cloned().collect();
                let mut props = BTreeMap::new();
                for name in names {
                    let (m, n) = (p.member(&name), q.member(&name));
                    let id = self.union(m, n);
                    props.insert(name, id);
                }
                let other = match (p.other, q.other) {
                    (None, None) => None,
                    (Some(o), None) | (None, Some(o)) => Some(o),
                    (Some(m), Some(n)) => Some(self.union(m, n)),
                };
                let max_members = p.max_members.zip(q.max_members).map(|(m, n)| m.max(n));
                Some(ObjectShape {
                    props,
                    other,
                    max_members,
                })
            }
        };
        let array = match (x.array, y.array) {
            (None, None) => None,
            (Some(a), None) | (None, Some(a)) => Some(a),
            (Some(p), Some(q)) => Some(ArrayShape {
                items: self.union(p.items, q.items),
                max_items: p.max_items.zip(q.max_items).map(|(m, n)| m.max(n)),
            }),
        };
        self.add(Shape {
            valid: x.valid || y.valid,
            object,
            array,
        })
    }

    fn intersect(&mut self, a: ShapeId, b: ShapeId) -> ShapeId {
        if a == b || b == ANY || a == NEVER {
            return a;
        }
        if a == ANY || b == NEVER {
            return b;
        }
        let (x, y) = (self.node(a).clone(), self.node(b).clone());
        let object = match (&x.object, &y.object) {
            (Some(p), Some(q)) => {
                let names: Vec<String> = p.props.keys().chain(q.props.keys()).cloned().collect();
                let mut props = BTreeMap::new();
                for name in names {
                    let (m, n) = (p.member(&name), q.member(&name));
                    let id = self.intersect(m, n);
                    props.insert(name, id);
                }
                let other = match (p.other, q.other) {
                    (Some(m), Some(n)) => Some(self.intersect(m, n)),
                    _ => None,
                };
                let max_members = match (p.max_members, q.max_members) {
                    (Some(m), Some(n)) => Some(m.min(n)),
                    (m, n) => m.or(n),
                };
                Some(ObjectShape {
                    props,
                    other,
                    max_members,
                })
            }
            _ => None,
        };
        let array = match (x.array, y.array) {
            (Some(p), Some(q)) => Some(ArrayShape {
                items: self.intersect(p.items, q.items),
                max_items: match (p.max_items, q.max_items) {
                    (Some(m), Some(n)) => Some(m.min(n)),
                    (m, n) => m.or(n),
                },
            }),
            _ => None,
        };
        self.add(Shape {
            valid: x.valid && y.valid,
            object,
            array,
        })
    }
}

fn saturating_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Violations kept (the first [`MAX_REPORTED_VIOLATIONS`]) and counted.
#[derive(Debug, Default)]
struct Collected {
    list: Vec<Violation>,
    total: usize,
}

impl Collected {
    fn push(&mut self, make: impl FnOnce() -> Violation) {
        self.total += 1;
        if self.list.len() < MAX_REPORTED_VIOLATIONS {
            self.list.push(make());
        }
    }

    fn violation(err: &jsonschema::ValidationError<'_>, instance_path: String) -> Violation {
        Violation {
            instance_path,
            schema_path: err.schema_path().as_str().to_string(),
            keyword: err.kind().keyword().to_string(),
            message: truncate(&err.to_string(), MESSAGE_CHARS),
        }
    }
}

/// Items decoded into their Rust type, while every item so far is valid.
#[derive(Debug)]
enum Typed {
    Events(Vec<Event>),
    Dp(Vec<FieldPrivacy>),
    /// Not decoded (an invalid item, too many items, or a stream this code has no type for).
    No,
}

/// One stream's array as read so far.
#[derive(Debug)]
struct Stream {
    /// An array was read here (the last value at this position, if several).
    present: bool,
    /// Items read.
    n: usize,
    /// The first items, as long as their text is shorter than a message: what a message
    /// about the array itself shows of it.
    head: Vec<Value>,
    /// Characters of `[` and the head items, each with its comma.
    head_chars: usize,
    /// Violations in the head items, and in the items after them.
    head_errors: Collected,
    rest_errors: Collected,
    /// Counting stopped at [`MAX_COUNTED_VIOLATIONS`].
    stopped: bool,
    typed: Typed,
    /// The items from this one on are markers in the skeleton (set when it is built).
    markers_from: usize,
}

impl Stream {
    fn new(path: &StreamPath) -> Self {
        let typed = match path.pointer.as_str() {
            "/events" => Typed::Events(Vec::new()),
            "/privacy/dp" => Typed::Dp(Vec::new()),
            _ => Typed::No,
        };
        Stream {
            present: false,
            n: 0,
            head: Vec::new(),
            head_chars: 1,
            head_errors: Collected::default(),
            rest_errors: Collected::default(),
            stopped: false,
            typed,
            markers_from: 0,
        }
    }

    fn counted(&self) -> usize {
        self.head_errors.total + self.rest_errors.total
    }
}

/// Counts the characters of what is written (UTF-8 in, chars counted).
struct CharCount(usize);

impl std::io::Write for CharCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.iter().filter(|&&b| b & 0xc0 != 0x80).count();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn display_chars(value: &Value) -> usize {
    let mut count = CharCount(0);
    // Writing a `Value` to a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// A small valid envelope of `version` with an empty array at every stream: an item is checked
/// in it, so the only errors are the item's own.
fn stub(version: &str, streams: &[StreamPath]) -> Value {
    let mut stub = serde_json::json!({
        "schema": { "id": crate::envelope::ENVELOPE_SCHEMA_ID, "version": version },
        "run_id": "01912d68-783e-7a03-8467-5661c1243ad4",
        "app": { "name": "acme", "version": "1.0.0" },
        "sdk": { "name": "telemetry-core", "version": "0.5.0" },
        "platform": { "os": "linux", "arch": "x86_64" },
        "ids": {
            "session": "8f14e45fceea167a5a36dedd4bea2543",
            "daily": "c9f0f895fb98ab9159f51fd0297e236d"
        },
        "period": { "day": "2025-03-14" },
        "events": [],
        "privacy": {
            "redaction": { "status": "not_applicable", "rules_version": "1.0.0" },
            "dp": [],
            "ledger": { "epsilon_spent": 0.0, "epsilon_cap": 8.0, "dropped_reports": 0 }
        }
    });
    for path in streams {
        let mut at = &mut stub;
        for name in &path.names {
            if !at.is_object() {
                *at = Value::Object(Map::new());
            }
            at = at
                .as_object_mut()
                .map(|o| o.entry(name.clone()).or_insert(Value::Null))
                .expect("an object");
        }
        *at = Value::Array(Vec::new());
    }
    stub
}

/// The stub envelope of `ENVELOPE_VERSIONS[index]`, for tests.
#[cfg(test)]
pub(super) fn stub_for(index: usize, shapes: &Shapes) -> Value {
    stub(ENVELOPE_VERSIONS[index].0, &shapes.streams)
}

/// Everything one parse needs and finds.
struct Parse<'a> {
    shapes: &'a Shapes,
    validator: &'a jsonschema::Validator,
    /// The stub envelope an item is checked in (in its stream's array, alone).
    wrapper: Value,
    streams: Vec<Stream>,
    /// Garbage nodes the current unit may still keep.
    garbage: usize,
    /// Something was not kept: the error list and count may miss what was in it.
    pruned: bool,
}

impl Parse<'_> {
    /// Checks item `k` of stream `id` and records what it found. Returns the item, and whether
    /// it is one of the head items.
    fn check(&mut self, id: usize, k: usize, item: Value) -> (Value, bool) {
        let shapes = self.shapes;
        let path = &shapes.streams[id];
        let stream = &mut self.streams[id];
        let in_head = stream.head_chars <= MESSAGE_CHARS;
        let Some(array) = self
            .wrapper
            .pointer_mut(&path.pointer)
            .and_then(Value::as_array_mut)
        else {
            return (item, in_head);
        };
        array.push(item);
        let mut invalid = false;
        if !self.validator.is_valid(&self.wrapper) {
            let prefix = format!("{}/0", path.pointer);
            let errors = if in_head {
                &mut stream.head_errors
            } else {
                &mut stream.rest_errors
            };
            for err in self.validator.iter_errors(&self.wrapper) {
                let Some(rest) = err.instance_path().as_str().strip_prefix(prefix.as_str()) else {
                    continue;
                };
                if !(rest.is_empty() || rest.starts_with('/')) {
                    continue;
                }
                invalid = true;
                errors.push(|| Collected::violation(&err, format!("{}/{k}{rest}", path.pointer)));
            }
        }
        let item = self
            .wrapper
            .pointer_mut(&path.pointer)
            .and_then(Value::as_array_mut)
            .and_then(Vec::pop)
            .unwrap_or(Value::Null);
        let too_many = path.max_items.is_some_and(|m| k >= m);
        let decoded = match &mut stream.typed {
            _ if invalid || too_many => Err(()),
            Typed::Events(all) => Event::deserialize(&item).map(|e| all.push(e)).map_err(drop),
            Typed::Dp(all) => FieldPrivacy::deserialize(&item)
                .map(|b| all.push(b))
                .map_err(drop),
            Typed::No => Ok(()),
        };
        if decoded.is_err() {
            stream.typed = Typed::No;
        }
        if stream.counted() >= MAX_COUNTED_VIOLATIONS {
            stream.stopped = true;
        }
        if in_head {
            stream.head_chars += display_chars(&item) + 1;
        }
        (item, in_head)
    }
}

/// A value at a position of a shape; `trie`: the stream tree node here, if any.
struct Node<'p, 'a> {
    parse: &'p mut Parse<'a>,
    shape: ShapeId,
    trie: Option<usize>,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // As serde_json's own value: a float that is not finite is null.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let Node { parse, shape, trie } = self;
        let shapes = parse.shapes;
        if let Some(id) = trie.and_then(|t| shapes.trie[t].stream) {
            return stream(parse, id, seq);
        }
        let mut items = Vec::new();
        match shapes.node(shape).array {
            Some(array) => {
                let cap = array.max_items.map(|m| m.saturating_add(1));
                while cap.is_none_or(|c| items.len() < c) {
                    let seed = Node {
                        parse: &mut *parse,
                        shape: array.items,
                        trie: None,
                    };
                    match seq.next_element_seed(seed)? {
                        Some(v) => items.push(v),
                        None => return Ok(Value::Array(items)),
                    }
                }
            }
            None => {
                // No array is valid here: a few items are kept, for messages.
                while parse.garbage > 0 {
                    parse.garbage -= 1;
                    let seed = Node {
                        parse: &mut *parse,
                        shape: SCALAR,
                        trie: None,
                    };
                    match seq.next_element_seed(seed)? {
                        Some(v) => items.push(v),
                        None => {
                            parse.garbage += 1;
                            return Ok(Value::Array(items));
                        }
                    }
                }
            }
        }
        while seq.next_element_seed(Skip)?.is_some() {
            parse.pruned = true;
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Node { parse, shape, trie } = self;
        let shapes = parse.shapes;
        let mut out = Map::new();
        let Some(object) = &shapes.node(shape).object else {
            // No object is valid here: a few members are kept, for messages.
            while let Some(key) = map.next_key::<String>()? {
                if parse.garbage == 0 {
                    map.next_value_seed(Skip)?;
                    parse.pruned = true;
                    continue;
                }
                parse.garbage -= 1;
                let value = map.next_value_seed(Node {
                    parse: &mut *parse,
                    shape: SCALAR,
                    trie: None,
                })?;
                out.insert(key, value);
            }
            return Ok(Value::Object(out));
        };
        // Members beyond the named ones: at most so many more than the schema allows (where it
        // allows none, a few, for the message that names them). Those kept are the first by
        // name: what a message shows of the object (names in order) is the whole object's.
        let cap = match object.other {
            None => Some(UNKNOWN_MEMBERS),
            Some(_) => object
                .max_members
                .map(|m| m.saturating_add(UNKNOWN_MEMBERS)),
        };
        let mut others = 0usize;
        while let Some(key) = map.next_key::<String>()? {
            if !object.props.contains_key(&key) && !out.contains_key(&key) {
                if cap.is_some_and(|c| others >= c) {
                    parse.pruned = true;
                    let last = out
                        .keys()
                        .rev()
                        .find(|k| !object.props.contains_key(*k))
                        .cloned();
                    match last {
                        Some(last) if key < last => drop(out.remove(&last)),
                        _ => {
                            map.next_value_seed(Skip)?;
                            continue;
                        }
                    }
                } else {
                    others += 1;
                }
            }
            let child = trie.and_then(|t| shapes.trie[t].children.get(&key).copied());
            if let Some(c) = child {
                // A repeated member replaces the last one (as in serde_json's value), and the
                // streams in it with it.
                for &id in &shapes.trie[c].below {
                    parse.streams[id] = Stream::new(&shapes.streams[id]);
                }
            }
            let value = map.next_value_seed(Node {
                parse: &mut *parse,
                shape: object.member(&key),
                trie: child,
            })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Reads stream `id`'s array item by item; returns what stands for it in the skeleton: `[]`
/// when empty, `[null]` (a marker) when within `maxItems`, else the head items then markers up
/// to one more than `maxItems` (so the skeleton has the same `maxItems` violation, with the
/// same message).
fn stream<'de, A: SeqAccess<'de>>(
    parse: &mut Parse<'_>,
    id: usize,
    mut seq: A,
) -> Result<Value, A::Error> {
    let shapes = parse.shapes;
    let path = &shapes.streams[id];
    parse.streams[id] = Stream::new(path);
    parse.streams[id].present = true;
    let mut k = 0usize;
    loop {
        if parse.streams[id].stopped {
            if seq.next_element_seed(Skip)?.is_none() {
                break;
            }
            k += 1;
            continue;
        }
        let skeleton_garbage = std::mem::replace(&mut parse.garbage, GARBAGE_NODES);
        let item = seq.next_element_seed(Node {
            parse: &mut *parse,
            shape: path.shape,
            trie: None,
        });
        parse.garbage = skeleton_garbage;
        let Some(item) = item? else {
            break;
        };
        let (item, in_head) = parse.check(id, k, item);
        if in_head {
            parse.streams[id].head.push(item);
        }
        k += 1;
    }
    let stream = &mut parse.streams[id];
    stream.n = k;
    let head = std::mem::take(&mut stream.head);
    Ok(match path.max_items {
        Some(max) if k > max => {
            let keep = head.len().min(max + 1);
            if keep < head.len() {
                // A stream of very few items: the head items past the limit are not
                // reported (no committed schema has one).
                parse.pruned = true;
            }
            stream.markers_from = keep;
            let mut items = head;
            items.truncate(keep);
            items.resize(max + 1, Value::Null);
            Value::Array(items)
        }
        _ if k > 0 => {
            stream.markers_from = 0;
            Value::Array(vec![Value::Null])
        }
        _ => Value::Array(Vec::new()),
    })
}

/// A parse of the whole document: the skeleton, and what the streams found.
struct Parsed {
    skeleton: Value,
    streams: Vec<Stream>,
    pruned: bool,
}

/// The shapes of `ENVELOPE_VERSIONS[index]`, built on first use.
pub(super) fn shapes(index: usize) -> Result<&'static Shapes, ValidationError> {
    static SHAPES: [OnceLock<Option<Shapes>>; ENVELOPE_VERSIONS.len()] =
        [const { OnceLock::new() }; ENVELOPE_VERSIONS.len()];
    let (Some(cell), Some((_, text))) = (SHAPES.get(index), ENVELOPE_VERSIONS.get(index)) else {
        return Err(ValidationError::Internal(format!(
            "no envelope schema number {index}"
        )));
    };
    cell.get_or_init(|| {
        serde_json::from_str::<Value>(text)
            .ok()
            .map(|s| Shapes::new(&s))
    })
    .as_ref()
    .ok_or_else(|| ValidationError::Internal("the envelope schema does not parse".into()))
}

fn parse(text: &str, index: usize) -> Result<Parsed, ValidationError> {
    let shapes = shapes(index)?;
    let mut parse = Parse {
        shapes,
        validator: envelope_validator(index)?,
        wrapper: stub(ENVELOPE_VERSIONS[index].0, &shapes.streams),
        streams: shapes.streams.iter().map(Stream::new).collect(),
        garbage: GARBAGE_NODES,
        pruned: false,
    };
    // As `serde_json::from_str::<Value>`: the value, then only whitespace.
    let mut de = serde_json::Deserializer::from_str(text);
    let skeleton = Node {
        parse: &mut parse,
        shape: shapes.root,
        trie: Some(0),
    }
    .deserialize(&mut de)
    .map_err(malformed)?;
    de.end().map_err(malformed)?;
    Ok(Parsed {
        skeleton,
        streams: parse.streams,
        pruned: parse.pruned,
    })
}

/// [`super::decode_whole`] with the schema, in bounded memory. `guess`: the index of the
/// schema the document probably declares (its items are checked against it while reading;
/// if the document declares another, it is read again).
pub(super) fn decode_bounded(
    text: &str,
    guess: usize,
) -> Result<ValidatedPayload, ValidationError> {
    let first = parse(text, guess)?;
    let (version, index) = declared_version(&first.skeleton)?;
    let parsed = if index == guess {
        first
    } else {
        drop(first);
        parse(text, index)?
    };
    let shapes = shapes(index)?;
    let validator = envelope_validator(index)?;
    let Parsed {
        mut skeleton,
        streams,
        pruned,
    } = parsed;
    let marker = |at: &str| {
        streams.iter().enumerate().find_map(|(id, s)| {
            let rest = at.strip_prefix(shapes.streams[id].pointer.as_str())?;
            let rest = rest.strip_prefix('/')?;
            let k: usize = rest.split('/').next()?.parse().ok()?;
            (s.present && k >= s.markers_from).then_some(id)
        })
    };
    let mut out = Collected::default();
    let mut spliced = vec![false; streams.len()];
    for err in validator.iter_errors(&skeleton) {
        let at = err.instance_path().as_str();
        if let Some(id) = marker(at) {
            if !spliced[id] {
                spliced[id] = true;
                out.extend(&streams[id]);
            }
            continue;
        }
        out.push(|| Collected::violation(&err, at.to_string()));
    }
    for (id, stream) in streams.iter().enumerate() {
        if stream.present && !spliced[id] {
            // Markers always fail (tested); should one not, its items' errors still count.
            out.extend(stream);
        }
    }
    let complete = !pruned && !streams.iter().any(|s| s.present && s.stopped);
    if out.total > 0 {
        return Err(ValidationError::Schema {
            violations: out.list,
            total: out.total,
            complete,
        });
    }
    if !complete
        || streams
            .iter()
            .any(|s| s.present && s.n > 0 && matches!(s.typed, Typed::No))
    {
        // Not reached: what is not kept is invalid, and a valid item decodes. Should it be,
        // the reference decides.
        return super::decode_whole(text, true);
    }
    for (id, stream) in streams.iter().enumerate() {
        if let Some(array) = skeleton.pointer_mut(&shapes.streams[id].pointer)
            && stream.present
        {
            *array = Value::Array(Vec::new());
        }
    }
    let mut envelope: Envelope = serde_json::from_value(skeleton)
        .map_err(|e| ValidationError::Decode(truncate(&e.to_string(), MESSAGE_CHARS)))?;
    for stream in streams {
        match stream.typed {
            Typed::Events(events) => envelope.events = events,
            Typed::Dp(dp) => envelope.privacy.dp = dp,
            Typed::No => {}
        }
    }
    envelope
        .check_consistency()
        .map_err(ValidationError::Inconsistent)?;
    Ok(ValidatedPayload { version, envelope })
}

impl Collected {
    /// Appends a stream's violations (those its markers stand for), in item order.
    fn extend(&mut self, stream: &Stream) {
        let parts: &[&Collected] = if stream.markers_from == 0 {
            &[&stream.head_errors, &stream.rest_errors]
        } else {
            &[&stream.rest_errors]
        };
        for part in parts {
            for v in &part.list {
                self.push(|| v.clone());
            }
            self.total += part.total - part.list.len();
        }
    }
}

/// A JSON value with at most `budget` nodes, or an error (for the fast path, which then leaves
/// the document to the reference path).
pub(super) struct Counted<'b>(pub(super) &'b mut usize);

impl<'de> DeserializeSeed<'de> for Counted<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Counted<'_> {
    fn take<E: de::Error>(&mut self) -> Result<(), E> {
        if *self.0 == 0 {
            return Err(E::custom("more nodes than the fast path keeps"));
        }
        *self.0 -= 1;
        Ok(())
    }
}

impl<'de> Visitor<'de> for Counted<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(mut self, v: bool) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<Value, E> {
        self.take()?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<Value, E> {
        self.take()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(mut self, v: String) -> Result<Value, E> {
        self.take()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        self.take()?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Counted(&mut *self.0))? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        self.take()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Counted(&mut *self.0))?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Reads a value, keeps nothing (the same parser: the same syntax errors).
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(SkipKey)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

/// A member name, read as serde_json's own value reads one (a string), and not kept.
struct SkipKey;

impl<'de> DeserializeSeed<'de> for SkipKey {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(Skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_shapes() -> impl Iterator<Item = (usize, &'static Shapes)> {
        (0..ENVELOPE_VERSIONS.len()).map(|i| (i, shapes(i).expect("the schema parses")))
    }

    #[test]
    fn the_streams_are_the_two_arrays_of_an_envelope() {
        for (i, shapes) in all_shapes() {
            let pointers: Vec<&str> = shapes.streams.iter().map(|s| s.pointer.as_str()).collect();
            assert_eq!(
                pointers,
                ["/events", "/privacy/dp"],
                "{}",
                ENVELOPE_VERSIONS[i].0
            );
            let max: Vec<Option<usize>> = shapes.streams.iter().map(|s| s.max_items).collect();
            assert_eq!(max, [Some(crate::MAX_EVENTS), Some(4096)]);
        }
    }

    /// Every container the bounded parse keeps has a bound: a unit (the skeleton, one item)
    /// keeps a bounded number of nodes, whatever the document.
    #[test]
    fn every_position_of_the_schemas_is_bounded() {
        for (i, shapes) in all_shapes() {
            let unbounded = shapes.unbounded_positions();
            // The two streams are read item by item (their length costs no memory).
            assert_eq!(
                unbounded,
                Vec::<String>::new(),
                "{}: {unbounded:?}",
                ENVELOPE_VERSIONS[i].0
            );
        }
    }

    /// The shapes are what the schemas say, where it matters: named members and their
    /// containers, the field map (any name, at most 64), closed objects, scalars.
    #[test]
    fn shapes_follow_the_schema() {
        for (_, shapes) in all_shapes() {
            let root = shapes.node(shapes.root);
            assert!(root.array.is_none());
            let object = root.object.as_ref().expect("an object");
            assert_eq!(object.other, None);
            let names: Vec<&str> = object.props.keys().map(String::as_str).collect();
            assert_eq!(names, super::super::ENVELOPE_MEMBERS);
            let events = shapes.node(object.props["events"]).array.expect("an array");
            let event = shapes
                .node(events.items)
                .object
                .as_ref()
                .expect("an object");
            assert_eq!(event.other, None);
            let fields = shapes
                .node(event.props["fields"])
                .object
                .as_ref()
                .expect("fields");
            assert_eq!(fields.max_members, Some(crate::MAX_FIELDS));
            let value = shapes.node(fields.other.expect("any name"));
            assert!(value.array.is_none());
            let text = value.object.as_ref().expect("a text value");
            assert_eq!(text.props.keys().collect::<Vec<_>>(), ["redacted"]);
            assert_eq!(text.other, None);
            assert_eq!(shapes.node(event.props["name"]), &shapes.nodes[SCALAR]);
            assert_eq!(shapes.node(object.props["run_id"]), &shapes.nodes[SCALAR]);
        }
    }

    /// The stub is valid (so an item checked in it is the only source of errors), and the
    /// marker (`null`) fails exactly once in every stream (so its error says where the items'
    /// errors go).
    #[test]
    fn stubs_are_valid_and_markers_fail_once() {
        for (i, shapes) in all_shapes() {
            let validator = envelope_validator(i).unwrap();
            let stub = stub_for(i, shapes);
            assert!(validator.is_valid(&stub), "{}", ENVELOPE_VERSIONS[i].0);
            for path in &shapes.streams {
                let mut doc = stub.clone();
                *doc.pointer_mut(&path.pointer).unwrap() = Value::Array(vec![Value::Null]);
                let errors: Vec<String> = validator
                    .iter_errors(&doc)
                    .map(|e| e.instance_path().as_str().to_owned())
                    .collect();
                assert_eq!(errors, [format!("{}/0", path.pointer)]);
            }
        }
    }

    /// What the markers stand in for: the arrays' schemas ask of them their type, their items
    /// and how many (no `uniqueItems`, `contains`, `minItems`: markers would change those).
    #[test]
    fn streamed_arrays_ask_only_items_and_count() {
        for (version, text) in ENVELOPE_VERSIONS {
            let schema: Value = serde_json::from_str(text).unwrap();
            for pointer in ["/properties/events", "/$defs/Privacy/properties/dp"] {
                let mut keys: Vec<&str> = schema
                    .pointer(pointer)
                    .and_then(Value::as_object)
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .collect();
                keys.sort_unstable();
                assert_eq!(
                    keys,
                    ["description", "items", "maxItems", "type"],
                    "{version}"
                );
            }
        }
    }

    #[test]
    fn shapes_of_combinators_over_approximate() {
        let schema = serde_json::json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "a": { "anyOf": [{ "type": "string" }, { "type": "array", "maxItems": 3, "items": { "type": "integer" } }] },
                "b": { "allOf": [{ "type": ["object", "array"] }, { "type": "object", "maxProperties": 2 }] },
                "c": { "$ref": "#/$defs/C" },
                "d": true,
                "e": { "enum": ["x", 1] },
                "f": { "type": "array", "prefixItems": [{ "type": "object" }] }
            },
            "$defs": { "C": { "type": "object", "properties": { "c": { "$ref": "#/$defs/C" } } } }
        });
        let shapes = Shapes::new(&schema);
        let root = shapes.node(shapes.root).object.clone().unwrap();
        let a = shapes.node(root.props["a"]);
        assert!(a.object.is_none());
        assert_eq!(a.array.unwrap().max_items, Some(3));
        let b = shapes.node(root.props["b"]);
        assert!(b.array.is_none());
        assert_eq!(b.object.as_ref().unwrap().max_members, Some(2));
        // A recursive `$ref`: anything below the recursion.
        let c = shapes.node(root.props["c"]).object.clone().unwrap();
        assert_eq!(c.props["c"], ANY);
        assert_eq!(root.props["d"], ANY);
        assert_eq!(root.props["e"], SCALAR);
        // `prefixItems` without `items`: the items after the prefix may be anything.
        assert_eq!(shapes.node(root.props["f"]).array.unwrap().items, ANY);
        // Arrays reached by names are streams (here `a` and `f`; `d` may be anything).
        let pointers: Vec<&str> = shapes.streams.iter().map(|s| s.pointer.as_str()).collect();
        assert_eq!(pointers, ["/a", "/f"]);
    }
}
