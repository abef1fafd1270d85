//! sproto against the golden vectors: the schema compiler against
//! addressbook.spb.hex, encode/decode against every row of sproto.tsv
//! (types, RPC requests and responses), 0-pack against sproto_pack.tsv,
//! and malformed schemas and packets.

mod support;

use skynet_proto::sproto::{
    self, DecodeError, DecodeVisitor, EncodeError, EncodeSource, Field, Part, Schema, Type, Value,
};
use support::lua::{self, build_table, Lua};
use support::{hex, read_tsv, to_hex, vectors_dir, Lcg};

fn addressbook_text() -> Vec<u8> {
    std::fs::read(vectors_dir().join("sproto/addressbook.sproto")).expect("addressbook.sproto")
}

fn addressbook_bin() -> Vec<u8> {
    let text = std::fs::read_to_string(vectors_dir().join("sproto/addressbook.spb.hex"))
        .expect("addressbook.spb.hex");
    hex(text.trim())
}

fn schema() -> Schema {
    Schema::from_binary(&addressbook_bin()).expect("the reference schema loads")
}

// ---- an EncodeSource over the test's Lua value model ----------------------

#[derive(Debug)]
enum SrcError {
    Limit(EncodeError),
    Type(String),
}

impl From<EncodeError> for SrcError {
    fn from(e: EncodeError) -> Self {
        SrcError::Limit(e)
    }
}

struct Src<'a> {
    current: Vec<&'a Lua>,
    structs: Vec<&'a Lua>,
    arrays: Vec<(&'a Lua, usize)>,
    entries: Vec<(&'a Lua, &'a Lua)>,
}

impl<'a> Src<'a> {
    fn new(v: &'a Lua) -> Self {
        Src {
            current: Vec::new(),
            structs: vec![v],
            arrays: Vec::new(),
            entries: Vec::new(),
        }
    }

    fn pop(&mut self) -> &'a Lua {
        self.current.pop().expect("a current value")
    }

    fn entries_of(t: &'a Lua) -> &'a [(Lua, Lua)] {
        match t {
            Lua::Table(e) => e,
            _ => &[],
        }
    }
}

fn mismatch(ty: &Type, f: &Field, index: usize, want: &str, got: &Lua) -> SrcError {
    SrcError::Type(format!(
        "{}.{}[{index}] is not {want} ({got:?})",
        ty.name(),
        f.name()
    ))
}

impl<'a> EncodeSource for Src<'a> {
    type Error = SrcError;

    fn field(&mut self, _ty: &Type, f: &Field) -> Result<bool, SrcError> {
        let t = *self.structs.last().unwrap();
        let key = Lua::Str(f.name().as_bytes().to_vec());
        match Self::entries_of(t).iter().find(|(k, _)| *k == key) {
            Some((_, v)) => {
                self.current.push(v);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    fn entry_part(&mut self, part: Part) {
        let (k, v) = *self.entries.last().unwrap();
        self.current.push(if part == Part::Key { k } else { v });
    }
    fn end_entry(&mut self) {
        self.entries.pop();
    }
    fn integer(&mut self, ty: &Type, f: &Field, index: usize) -> Result<i64, SrcError> {
        match self.pop() {
            Lua::Int(i) => Ok(*i),
            Lua::Float(b) if f64::from_bits(*b).fract() == 0.0 => Ok(f64::from_bits(*b) as i64),
            other => Err(mismatch(ty, f, index, "an integer", other)),
        }
    }
    fn number(&mut self, ty: &Type, f: &Field, index: usize) -> Result<f64, SrcError> {
        match self.pop() {
            Lua::Int(i) => Ok(*i as f64),
            Lua::Float(b) => Ok(f64::from_bits(*b)),
            other => Err(mismatch(ty, f, index, "a number", other)),
        }
    }
    fn boolean(&mut self, ty: &Type, f: &Field, index: usize) -> Result<bool, SrcError> {
        match self.pop() {
            Lua::Bool(b) => Ok(*b),
            other => Err(mismatch(ty, f, index, "a boolean", other)),
        }
    }
    fn string(
        &mut self,
        ty: &Type,
        f: &Field,
        index: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), SrcError> {
        match self.pop() {
            Lua::Str(s) => {
                out.extend_from_slice(s);
                Ok(())
            }
            other => Err(mismatch(ty, f, index, "a string", other)),
        }
    }
    fn begin_struct(&mut self, ty: &Type, f: &Field, index: usize) -> Result<(), SrcError> {
        let v = self.pop();
        if !matches!(v, Lua::Table(_)) {
            return Err(mismatch(ty, f, index, "a table", v));
        }
        self.structs.push(v);
        Ok(())
    }
    fn end_struct(&mut self) {
        self.structs.pop();
    }
    fn begin_array(&mut self, ty: &Type, f: &Field) -> Result<(), SrcError> {
        let v = self.pop();
        if !matches!(v, Lua::Table(_)) {
            return Err(mismatch(ty, f, 1, "a table", v));
        }
        self.arrays.push((v, 0));
        Ok(())
    }
    fn next_element(&mut self, _ty: &Type, f: &Field, index: usize) -> Result<bool, SrcError> {
        let (t, pos) = *self.arrays.last().unwrap();
        let entries = Self::entries_of(t);
        if f.key.is_some() {
            let Some((k, v)) = entries.get(pos) else {
                return Ok(false);
            };
            self.arrays.last_mut().unwrap().1 += 1;
            if f.map {
                self.entries.push((k, v));
            } else {
                self.current.push(v);
            }
            return Ok(true);
        }
        match entries.iter().find(|(k, _)| *k == Lua::Int(index as i64)) {
            Some((_, v)) => {
                self.current.push(v);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    fn end_array(&mut self) {
        self.arrays.pop();
    }
}

fn encode(s: &Schema, ty: &str, v: &Lua) -> Result<Vec<u8>, SrcError> {
    let t = s
        .type_index(ty.as_bytes())
        .unwrap_or_else(|| panic!("type {ty}"));
    let mut out = Vec::new();
    sproto::encode(s, t, &mut Src::new(v), &mut out)?;
    Ok(out)
}

// ---- a DecodeVisitor building Lua values ----------------------------------

enum Frame {
    Struct {
        entries: Vec<(Lua, Lua)>,
        key_tag: Option<u16>,
        key: Option<Lua>,
        /// Map entry: the tags of the key and value fields, and what they hold.
        entry: Option<(u16, u16)>,
        value: Option<Lua>,
    },
    Array(Vec<(Lua, Lua)>),
}

#[derive(Debug)]
enum SinkError {
    Decode(DecodeError),
    Other(String),
}

impl From<DecodeError> for SinkError {
    fn from(e: DecodeError) -> Self {
        SinkError::Decode(e)
    }
}

struct Sink {
    frames: Vec<Frame>,
}

fn scalar(v: Value<'_>) -> Lua {
    match v {
        Value::Integer(i) => Lua::Int(i),
        Value::Real(r) => Lua::Float(r.to_bits()),
        Value::Boolean(b) => Lua::Bool(b),
        Value::Bytes(b) => Lua::Str(b.to_vec()),
    }
}

impl Sink {
    fn set(&mut self, f: &Field, v: Lua) {
        match self.frames.last_mut().unwrap() {
            Frame::Struct {
                entries,
                key_tag,
                key,
                entry,
                value,
            } => {
                if let Some((kt, vt)) = *entry {
                    if f.tag == kt {
                        *key = Some(v);
                    } else if f.tag == vt {
                        *value = Some(v);
                    }
                    return;
                }
                if *key_tag == Some(f.tag) && !f.array {
                    *key = Some(v.clone());
                }
                entries.push((Lua::Str(f.name().as_bytes().to_vec()), v));
            }
            Frame::Array(_) => panic!("a field set on an array"),
        }
    }

    fn push(&mut self, k: Lua, v: Lua) {
        match self.frames.last_mut().unwrap() {
            Frame::Array(e) => e.push((k, v)),
            _ => panic!("an element outside an array"),
        }
    }
}

impl DecodeVisitor for Sink {
    type Error = SinkError;
    fn value(
        &mut self,
        _ty: &Type,
        f: &Field,
        index: usize,
        v: Value<'_>,
    ) -> Result<(), SinkError> {
        if index == 0 {
            self.set(f, scalar(v));
        } else {
            self.push(Lua::Int(index as i64), scalar(v));
        }
        Ok(())
    }
    fn begin_array(&mut self, _ty: &Type, _f: &Field, _len: usize) -> Result<(), SinkError> {
        self.frames.push(Frame::Array(Vec::new()));
        Ok(())
    }
    fn end_array(&mut self, _ty: &Type, f: &Field) -> Result<(), SinkError> {
        let Some(Frame::Array(e)) = self.frames.pop() else {
            panic!()
        };
        let t = build_table(e).map_err(SinkError::Other)?;
        self.set(f, t);
        Ok(())
    }
    fn begin_struct(
        &mut self,
        _ty: &Type,
        f: &Field,
        index: usize,
        sub: &Type,
        _w: usize,
    ) -> Result<(), SinkError> {
        let entry = (f.map && index > 0).then(|| (sub.fields[0].tag, sub.fields[1].tag));
        self.frames.push(Frame::Struct {
            entries: Vec::new(),
            key_tag: if index > 0 { f.key } else { None },
            key: None,
            entry,
            value: None,
        });
        Ok(())
    }
    fn end_struct(
        &mut self,
        _ty: &Type,
        f: &Field,
        index: usize,
        _sub: &Type,
    ) -> Result<(), SinkError> {
        let Some(Frame::Struct {
            entries,
            key,
            entry,
            value,
            ..
        }) = self.frames.pop()
        else {
            panic!()
        };
        if entry.is_some() {
            let k = key.ok_or_else(|| {
                SinkError::Other(format!("Can't find key field in [{}]", f.name()))
            })?;
            let v = value.ok_or_else(|| {
                SinkError::Other(format!("Can't find value field in [{}]", f.name()))
            })?;
            self.push(k, v);
            return Ok(());
        }
        let t = build_table(entries).map_err(SinkError::Other)?;
        if index == 0 {
            self.set(f, t);
        } else if f.key.is_some() {
            let k = key.ok_or_else(|| {
                SinkError::Other(format!("Can't find main index in [{}]", f.name()))
            })?;
            self.push(k, t);
        } else {
            self.push(Lua::Int(index as i64), t);
        }
        Ok(())
    }
}

fn decode(s: &Schema, ty: &str, b: &[u8]) -> Result<(Lua, usize), SinkError> {
    let t = s.type_index(ty.as_bytes()).unwrap();
    let mut sink = Sink {
        frames: vec![Frame::Struct {
            entries: Vec::new(),
            key_tag: None,
            key: None,
            entry: None,
            value: None,
        }],
    };
    let used = sproto::decode(s, t, b, &mut sink)?;
    let Some(Frame::Struct { entries, .. }) = sink.frames.pop() else {
        panic!()
    };
    Ok((build_table(entries).unwrap(), used))
}

fn value_of(expr: &str) -> Lua {
    let mut v = lua::parse_list(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    assert_eq!(v.len(), 1, "{expr}");
    v.pop().unwrap()
}

fn table(pairs: &[(&str, Lua)]) -> Lua {
    build_table(
        pairs
            .iter()
            .map(|(k, v)| (Lua::Str(k.as_bytes().to_vec()), v.clone()))
            .collect(),
    )
    .unwrap()
}

fn packed(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    sproto::pack(b, &mut out);
    out
}

fn unpacked(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    sproto::unpack(b, &mut out).expect("unpack");
    out
}

// ---- the tests ------------------------------------------------------------

#[test]
fn the_compiler_reproduces_the_reference_binary() {
    let bin = sproto::parse(&addressbook_text(), "=text").expect("addressbook.sproto compiles");
    assert_eq!(to_hex(&bin), to_hex(&addressbook_bin()));
}

#[test]
fn the_reference_schema_has_its_types_and_protocols() {
    let s = schema();
    let names: Vec<&str> = s.types.iter().map(|t| t.name()).collect();
    assert_eq!(
        names,
        [
            "AddressBook",
            "Attr",
            "Person",
            "Person.PhoneNumber",
            "lookup.request",
            "notify.request",
            "package",
            "update.response"
        ]
    );
    let tags: Vec<(u16, &str)> = s.protocols.iter().map(|p| (p.tag, p.name())).collect();
    assert_eq!(
        tags,
        [(1, "lookup"), (2, "update"), (3, "ping"), (4, "notify")]
    );
    let notify = s.protocol_by_name(b"notify").unwrap();
    assert!(notify.confirm && notify.response.is_none() && notify.has_response());
    let ping = s.protocol_by_tag(3).unwrap();
    assert!(ping.request.is_none() && !ping.has_response());
    let dump = s.dump();
    assert!(dump.contains("\theight (4) decimal(100)\n"), "{dump}");
    assert!(dump.contains("\tfriends (14) *Person key[1]\n"), "{dump}");
    assert!(
        dump.contains("\tattrs (15) *Attr key[0] value[1]\n"),
        "{dump}"
    );
    assert!(
        dump.contains("\tnotify (4) request:notify.request response nil\n"),
        "{dump}"
    );
    assert!(dump.contains("\tping (3) request:(null)\n"), "{dump}");
}

#[test]
fn type_rows_encode_pack_and_decode() {
    let s = schema();
    let mut n = 0;
    for row in read_tsv("sproto/sproto.tsv") {
        if row[0] != "type" {
            continue;
        }
        let (name, expr, enc, pk, canonical) = (&row[1], &row[4], &row[5], &row[6], &row[7]);
        let v = value_of(expr);
        let bytes = encode(&s, name, &v).unwrap_or_else(|e| panic!("{name} {expr}: {e:?}"));
        if canonical == "yes" {
            assert_eq!(to_hex(&bytes), *enc, "encode {name} {expr}");
            assert_eq!(to_hex(&packed(&bytes)), *pk, "pack {name} {expr}");
        } else {
            assert_eq!(bytes.len(), hex(enc).len(), "encode size {name} {expr}");
        }
        // The reference bytes decode to the value, and so do ours.
        for b in [hex(enc), bytes] {
            let (got, used) =
                decode(&s, name, &b).unwrap_or_else(|e| panic!("{name} {expr}: {e:?}"));
            assert_eq!(got, v, "decode {name} {expr}");
            assert_eq!(used, b.len());
        }
        // Unpacking the reference packet gives the message, zero-padded.
        let u = unpacked(&hex(pk));
        assert_eq!(&u[..hex(enc).len()], &hex(enc)[..]);
        assert!(u[hex(enc).len()..].iter().all(|&b| b == 0));
        n += 1;
    }
    assert_eq!(n, 47, "type rows");
}

#[test]
fn rpc_rows_encode_and_dispatch() {
    let s = schema();
    let rows: Vec<Vec<String>> = read_tsv("sproto/sproto.tsv")
        .into_iter()
        .filter(|r| r[0] != "type")
        .collect();
    assert_eq!(rows.len(), 16);
    for row in &rows {
        let (kind, name, session, ud, expr, enc, pk) = (
            &row[0], &row[1], &row[2], &row[3], &row[4], &row[5], &row[6],
        );
        let p = s.protocol_by_name(name.as_bytes()).unwrap();
        let num = |c: &str| (c != "-").then(|| Lua::Int(c.parse().unwrap()));
        let mut header = Vec::new();
        if kind == "request" {
            header.push(("type", Lua::Int(i64::from(p.tag))));
        }
        if let Some(v) = num(session) {
            header.push(("session", v));
        }
        if let Some(v) = num(ud) {
            header.push(("ud", v));
        }
        let header = table(&header);
        let body_type = if kind == "request" {
            p.request
        } else {
            p.response
        };
        let mut bytes = encode(&s, "package", &header).unwrap();
        let value = value_of(expr);
        if let Some(t) = body_type {
            bytes.extend(encode(&s, s.types[t].name(), &value).unwrap());
        } else {
            assert_eq!(value, Lua::Nil, "{kind} {name}: no body type, so no value");
        }
        assert_eq!(to_hex(&bytes), *enc, "{kind} {name} {expr}");
        assert_eq!(to_hex(&packed(&bytes)), *pk, "{kind} {name} {expr}");
        // The receiving side: unpack, the header, then the body after it.
        let u = unpacked(&hex(pk));
        let (h, used) = decode(&s, "package", &u).unwrap();
        assert_eq!(h, header);
        if let Some(t) = body_type {
            let (body, _) = decode(&s, s.types[t].name(), &u[used..]).unwrap();
            assert_eq!(body, value, "{kind} {name}");
        }
    }
}

#[test]
fn pack_rows() {
    let rows = read_tsv("sproto/sproto_pack.tsv");
    assert_eq!(rows.len(), 16);
    for row in rows {
        // Long inputs are given only as an expression.
        let input = if row[2].starts_with('(') {
            match value_of(&row[1]) {
                Lua::Str(s) => s,
                other => panic!("{other:?}"),
            }
        } else {
            hex(&row[2])
        };
        let (what, pk, up) = (&row[0], &row[3], &row[4]);
        assert_eq!(to_hex(&packed(&input)), *pk, "pack: {what}");
        let want = if up.starts_with('(') {
            assert!(up.contains("same as input"), "{up}");
            to_hex(&input)
        } else {
            up.clone()
        };
        assert_eq!(to_hex(&unpacked(&hex(pk))), want, "unpack: {what}");
    }
}

#[test]
fn truncated_and_inconsistent_messages_are_errors() {
    let s = schema();
    let full = hex(&read_tsv("sproto/sproto.tsv")
        .into_iter()
        .find(|r| r[4].starts_with("{name=\"Carol\""))
        .unwrap()[5]);
    // Every cut of the message either fails or decodes a prefix of fields
    // (a cut can only shorten the last data item's room): never a panic.
    for cut in 0..full.len() {
        match decode(&s, "Person", &full[..cut]) {
            Err(SinkError::Decode(DecodeError::Malformed(_))) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    let bad = |b: &[u8], why: &str| match decode(&s, "Person", b) {
        Err(SinkError::Decode(DecodeError::Malformed(w))) => {
            assert!(w.contains(why), "{w} vs {why}")
        }
        other => panic!("{b:02x?}: {other:?}"),
    };
    bad(&[], "header");
    bad(&[3, 0, 0, 0], "field words");
    bad(&[1, 0, 0, 0, 9, 0, 0, 0, b'a'], "overruns");
    // a boolean sent as a data item
    bad(&[2, 0, 13, 0, 0, 0, 1, 0, 0, 0, 1], "boolean");
    // an integer item of 3 bytes (id, tag 1)
    bad(&[2, 0, 1, 0, 0, 0, 3, 0, 0, 0, 1, 2, 3], "neither 4 nor 8");
    // a string sent inline (name, tag 0)
    bad(&[1, 0, 4, 0], "inline");
    // an integer array with element size 3, or a partial element (scores, tag 9)
    bad(
        &[2, 0, 17, 0, 0, 0, 4, 0, 0, 0, 3, 1, 2, 3],
        "size other than",
    );
    bad(&[2, 0, 17, 0, 0, 0, 4, 0, 0, 0, 4, 1, 2, 3], "partial");
    // a phone element (tag 3) longer than the array
    bad(
        &[2, 0, 5, 0, 0, 0, 6, 0, 0, 0, 9, 0, 0, 0, 0, 0],
        "overruns the array",
    );
    // a nested struct that leaves bytes of its item unread
    bad(
        &[2, 0, 5, 0, 0, 0, 8, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0],
        "does not fill",
    );
    // A map entry (attrs, tag 15) without its value field.
    let entry = [
        2u8, 0, 29, 0, 0, 0, 14, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'h', b'p',
    ];
    match decode(&s, "Person", &entry) {
        Err(SinkError::Other(m)) => assert_eq!(m, "Can't find value field in [attrs]"),
        other => panic!("{other:?}"),
    }
    // Unknown tags and trailing bytes after the top-level struct are accepted.
    let (v, used) = decode(&s, "Person", &[2, 0, 0x3f, 0, 4, 0, 0xaa, 0xbb]).unwrap();
    assert_eq!(used, 6);
    assert_eq!(v, Lua::Table(vec![]));
}

/// `.Node { next 0 : Node  v 1 : integer }` nested `n` deep.
fn chain_schema() -> Schema {
    let bin = sproto::parse(b".Node { next 0 : Node\n v 1 : integer }", "chain").unwrap();
    Schema::from_binary(&bin).unwrap()
}

fn chain(n: usize) -> Lua {
    let mut v = table(&[("v", Lua::Int(1))]);
    for _ in 1..n {
        v = table(&[("next", v), ("v", Lua::Int(1))]);
    }
    v
}

#[test]
fn nesting_is_limited_to_64_levels() {
    let s = chain_schema();
    let ok = encode(&s, "Node", &chain(64)).expect("64 levels encode");
    assert!(matches!(
        encode(&s, "Node", &chain(65)),
        Err(SrcError::Limit(EncodeError::TooDeep))
    ));
    decode(&s, "Node", &ok).expect("64 levels decode");
    // Hand-build 65 levels: each level is { next = <item> }.
    let mut b = vec![1u8, 0, 4, 0]; // innermost: v = 1
    for _ in 0..64 {
        let mut outer = vec![1u8, 0, 0, 0];
        outer.extend((b.len() as u32).to_le_bytes());
        outer.extend(&b);
        b = outer;
    }
    assert!(matches!(
        decode(&s, "Node", &b),
        Err(SinkError::Decode(DecodeError::TooDeep))
    ));
}

#[test]
fn oversized_encodings_are_refused() {
    let s = schema();
    let big = Lua::Str(vec![b'x'; sproto::MAX_SIZE]);
    let v = table(&[("name", big)]);
    assert!(matches!(
        encode(&s, "Person", &v),
        Err(SrcError::Limit(EncodeError::TooLarge))
    ));
    let v = table(&[("name", Lua::Str(vec![b'x'; sproto::MAX_SIZE - 64]))]);
    assert!(encode(&s, "Person", &v).is_ok());
}

#[test]
fn type_mismatches_come_from_the_source() {
    let s = schema();
    let v = table(&[("id", Lua::Str(b"x".to_vec()))]);
    match encode(&s, "Person", &v) {
        Err(SrcError::Type(m)) => assert!(m.starts_with("Person.id[0] is not an integer"), "{m}"),
        other => panic!("{other:?}"),
    }
    let v = table(&[(
        "scores",
        build_table(vec![
            (Lua::Int(1), Lua::Int(1)),
            (Lua::Int(2), Lua::Bool(true)),
        ])
        .unwrap(),
    )]);
    match encode(&s, "Person", &v) {
        Err(SrcError::Type(m)) => {
            assert!(m.starts_with("Person.scores[2] is not an integer"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_binary_schemas_are_refused() {
    let good = addressbook_bin();
    for cut in 0..good.len() {
        assert!(Schema::from_binary(&good[..cut]).is_err(), "cut at {cut}");
    }
    for (bin, why) in [
        (vec![3u8, 0, 0, 0], "field words"),
        (vec![1u8, 0, 0, 0, 8, 0, 0, 0, 1, 2], "overruns"),
        (vec![1u8, 0, 2, 0], "unexpected entry"),
    ] {
        let e = Schema::from_binary(&bin).unwrap_err();
        assert!(e.0.contains(why), "{e} vs {why}");
    }
    // A field whose struct type index is out of range.
    let text = b".A { b 0 : B }\n.B { x 0 : integer }";
    let mut bin = sproto::parse(text, "t").unwrap();
    let pos = bin.windows(2).position(|w| w == [4, 0]).unwrap(); // packvalue(1) = the type index of B
    bin[pos] = 40;
    assert!(Schema::from_binary(&bin).is_err());
    // The empty schema is fine.
    let empty = Schema::from_binary(&sproto::parse(b"  # nothing\n", "t").unwrap()).unwrap();
    assert!(empty.types.is_empty() && empty.protocols.is_empty());
}

fn parse_err(text: &str) -> sproto::ParseError {
    sproto::parse(text.as_bytes(), "=text").expect_err(text)
}

#[test]
fn bad_schemas_name_the_line_and_the_problem() {
    let cases: &[(&str, usize, &str)] = &[
        (
            ".A {\n a 0 : integer\n b 0 : string\n}",
            3,
            "redefine tag 0 in type A",
        ),
        (
            ".A {\n a 0 : integer\n a 1 : string\n}",
            3,
            "redefine a in type A",
        ),
        (
            ".A {\n a 0 : Missing\n}",
            2,
            "Undefined type Missing in type A",
        ),
        (".A { }\n\n.A { }", 3, "redefined type A"),
        (
            ".A {\n a 0 integer\n}",
            2,
            "syntax error at [=text] line (2): expected ':'",
        ),
        (
            ".A {\n a 0 : integer\n",
            3,
            "syntax error at [=text] line (3)",
        ),
        ("\n\n.A { a x : integer }", 3, "expected the tag of field a"),
        (".A { a 0 : integer ; }", 1, "unexpected character ';'"),
        (".A { a 99999 : integer }", 1, "out of range"),
        (
            "p 1 {\n request Nope\n}",
            2,
            "Undefined request type Nope in protocol p",
        ),
        ("p 1 {}\nq 1 {}", 2, "redefined protocol tag 1 at q"),
        ("p 1 {}\np 2 {}", 2, "redefined protocol p"),
        (
            "p 1 {\n request {}\n request {}\n}",
            3,
            "redefine request in protocol p",
        ),
        (
            ".A { x 0 : integer }\n.B {\n a 0 : *A()\n}",
            3,
            "Invalid map definition: a, must only have two fields",
        ),
        (
            ".A { x 0 : integer }\n.B {\n a 0 : *A(y)\n}",
            3,
            "Invalid map index :y",
        ),
        (
            ".A { x 0 : A }\n.B {\n a 0 : *A(x)\n}",
            3,
            "Invalid map index :x",
        ),
        (
            ".B {\n a 0 : A(x)\n}\n.A { x 0 : integer }",
            2,
            "a key needs an array",
        ),
        (
            ".B {\n\n a 0 : integer(x)\n}",
            3,
            "invalid decimal precision (x)",
        ),
        (".B { a 0 : integer(40) }", 1, "decimal precision 40"),
        (".B { a 0 : *string(2) }", 1, "Invalid map index :2"),
    ];
    for (text, line, what) in cases {
        let e = parse_err(text);
        assert_eq!(e.line, *line, "{text:?}: {e}");
        assert!(e.message.contains(what), "{text:?}: {e} (wanted {what:?})");
        assert!(e.message.contains(&format!("line ({line})")), "{e}");
    }
}

#[test]
fn compiled_schemas_load_and_resolve_nested_names() {
    let text = b"
        .Outer {
            .Inner { v 0 : integer }
            a 0 : Inner          # Outer.Inner
            b 1 : *Outer.Inner
            c 3 : *Top(k)
            d 5 : *integer(3)
            e 6 : binary
        }
        .Top { k 0 : string  v 1 : double }
        rpc 7 { request Outer.Inner response { ok 0 : boolean } }
        other 9 { response nil }
    ";
    let s = Schema::from_binary(&sproto::parse(text, "t").unwrap()).unwrap();
    let outer = &s.types[s.type_index(b"Outer").unwrap()];
    let inner = s.type_index(b"Outer.Inner").unwrap();
    assert_eq!(outer.fields[0].struct_index(), Some(inner));
    assert_eq!(outer.fields[1].struct_index(), Some(inner));
    assert!(outer.fields[1].array);
    assert_eq!(outer.fields[2].key, Some(0));
    assert_eq!(outer.fields[3].kind, sproto::Kind::Decimal { scale: 1000 });
    assert_eq!(outer.fields[4].kind, sproto::Kind::Binary);
    assert_eq!(outer.maxn, 5 + 2);
    let rpc = s.protocol_by_tag(7).unwrap();
    assert_eq!(rpc.request, Some(inner));
    assert_eq!(s.types[rpc.response.unwrap()].name(), "rpc.response");
    assert!(s.protocol_by_name(b"other").unwrap().confirm);
    // Sparse tags: header words with skips, and decoding back.
    let v = table(&[
        ("e", Lua::Str(b"\0".to_vec())),
        (
            "d",
            build_table(vec![(Lua::Int(1), Lua::Float(0.5f64.to_bits()))]).unwrap(),
        ),
    ]);
    let b = encode(&s, "Outer", &v).unwrap();
    assert_eq!(&b[..8], &[3, 0, 9, 0, 0, 0, 0, 0]);
    assert_eq!(decode(&s, "Outer", &b).unwrap().0, v);
}

#[test]
fn corrupted_input_never_panics() {
    let s = schema();
    let msg = hex(&read_tsv("sproto/sproto.tsv")
        .into_iter()
        .find(|r| r[4].starts_with("{name=\"Carol\""))
        .unwrap()[5]);
    let bin = addressbook_bin();
    let mut rng = Lcg(7);
    for _ in 0..20_000 {
        let mut m = msg.clone();
        let mut b = bin.clone();
        for _ in 0..1 + rng.next_below(4) {
            let i = rng.next_below(m.len());
            m[i] ^= 1 << rng.next_below(8);
            let j = rng.next_below(b.len());
            b[j] ^= 1 << rng.next_below(8);
        }
        let _ = decode(&s, "Person", &m);
        let _ = decode(&s, "AddressBook", &m);
        let _ = Schema::from_binary(&b);
        let mut out = Vec::new();
        let _ = sproto::unpack(&m, &mut out);
    }
}
