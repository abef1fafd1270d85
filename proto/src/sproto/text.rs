//! The `.sproto` schema language, compiled to the binary schema that
//! [`Schema::from_binary`](super::Schema::from_binary) loads.
//!
//! ```text
//! .Person {               # a type; '#' starts a comment
//!     name 0 : string
//!     .Phone { number 0 : string }   # nested type Person.Phone
//!     phone 1 : *Phone    # array
//!     friends 2 : *Person(id)  # map keyed by the field id of Person
//!     attrs 3 : *Attr()   # map from Attr's first field to its second
//!     height 4 : integer(2)    # decimal: 1.75 is sent as 175
//! }
//! login 1 {               # a protocol with its tag
//!     request { user 0 : string }
//!     response Person     # or `response nil`: answered, without content
//! }
//! ```
//!
//! The output is byte-for-byte what skynet's `sprotoparser` produces: types
//! sorted by full name (their index is their position), fields by tag,
//! protocols by tag. Errors name the line and the problem.

use std::collections::BTreeMap;
use std::fmt;

use super::schema::{MAX_DECIMAL, MAX_TAG};

/// A schema text that could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the problem.
    pub line: usize,
    /// The whole message, with the file name and line.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Number(String),
    Punct(u8),
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "'{w}'"),
            Tok::Number(n) => write!(f, "'{n}'"),
            Tok::Punct(c) => write!(f, "'{}'", *c as char),
            Tok::End => f.write_str("the end of the text"),
        }
    }
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
}

fn is_alpha(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

impl Lexer<'_> {
    fn skip_blank(&mut self) {
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.i += 1;
                }
                b' ' | b'\t' | b'\r' => self.i += 1,
                b'#' => {
                    while self.s.get(self.i).is_some_and(|&c| c != b'\n') {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn word_end(&self, mut j: usize) -> usize {
        while self
            .s
            .get(j)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_')
        {
            j += 1;
        }
        j
    }

    /// The next token and the line it starts on.
    fn next(&mut self) -> Result<(Tok, usize), (usize, String)> {
        self.skip_blank();
        let line = self.line;
        let Some(&c) = self.s.get(self.i) else {
            return Ok((Tok::End, line));
        };
        let start = self.i;
        if is_alpha(c) {
            let mut j = self.word_end(start);
            // A dotted type name: word.word...
            while self.s.get(j) == Some(&b'.') && self.s.get(j + 1).is_some_and(|&c| is_alpha(c)) {
                j = self.word_end(j + 1);
            }
            self.i = j;
            let w = String::from_utf8_lossy(&self.s[start..j]).into_owned();
            return Ok((Tok::Word(w), line));
        }
        if c.is_ascii_digit() {
            let mut j = start;
            while self.s.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
            self.i = j;
            let n = String::from_utf8_lossy(&self.s[start..j]).into_owned();
            return Ok((Tok::Number(n), line));
        }
        if b".{}:*()".contains(&c) {
            self.i += 1;
            return Ok((Tok::Punct(c), line));
        }
        let shown = if c.is_ascii_graphic() {
            format!("'{}'", c as char)
        } else {
            format!("byte 0x{c:02x}")
        };
        Err((line, format!("unexpected character {shown}")))
    }
}

/// A field as written.
#[derive(Debug, Clone)]
struct FieldDef {
    name: String,
    tag: u32,
    array: bool,
    typename: String,
    /// What the parentheses held: a word (possibly empty) or a number.
    paren: Option<Paren>,
    line: usize,
}

#[derive(Debug, Clone)]
enum Paren {
    Key(String),
    Number(String),
}

/// A struct body as written: fields and nested types.
#[derive(Debug, Default)]
struct Body {
    fields: Vec<FieldDef>,
    types: Vec<TypeDef>,
}

/// A nested type as written: its name, line and body.
type TypeDef = (String, usize, Body);

#[derive(Debug)]
enum Sub {
    Named(String),
    Inline(Body),
}

#[derive(Debug)]
struct ProtoDef {
    name: String,
    tag: u32,
    line: usize,
    subs: Vec<(String, usize, Sub)>,
}

struct Parser<'a> {
    lex: Lexer<'a>,
    tok: Tok,
    line: usize,
    file: String,
}

type PResult<T> = Result<T, ParseError>;

impl Parser<'_> {
    fn syntax(&self, line: usize, what: String) -> ParseError {
        ParseError {
            line,
            message: format!("syntax error at [{}] line ({line}): {what}", self.file),
        }
    }

    fn advance(&mut self) -> PResult<()> {
        match self.lex.next() {
            Ok((t, line)) => {
                self.tok = t;
                self.line = line;
                Ok(())
            }
            Err((line, msg)) => Err(self.syntax(line, msg)),
        }
    }

    fn expected(&self, what: &str) -> ParseError {
        self.syntax(self.line, format!("expected {what}, found {}", self.tok))
    }

    fn punct(&mut self, c: u8, what: &str) -> PResult<()> {
        if self.tok == Tok::Punct(c) {
            self.advance()
        } else {
            Err(self.expected(what))
        }
    }

    /// A name without dots.
    fn name(&mut self, what: &str) -> PResult<String> {
        match &self.tok {
            Tok::Word(w) if !w.contains('.') => {
                let w = w.clone();
                self.advance()?;
                Ok(w)
            }
            _ => Err(self.expected(what)),
        }
    }

    fn typename(&mut self, what: &str) -> PResult<String> {
        match &self.tok {
            Tok::Word(w) => {
                let w = w.clone();
                self.advance()?;
                Ok(w)
            }
            _ => Err(self.expected(what)),
        }
    }

    fn tag(&mut self, what: &str) -> PResult<u32> {
        match &self.tok {
            Tok::Number(n) => {
                let line = self.line;
                let v = n
                    .parse::<u32>()
                    .ok()
                    .filter(|&v| v <= MAX_TAG)
                    .ok_or_else(|| {
                        self.syntax(line, format!("{what} {n} is out of range (0..{MAX_TAG})"))
                    })?;
                self.advance()?;
                Ok(v)
            }
            _ => Err(self.expected(what)),
        }
    }

    fn schema(&mut self) -> PResult<(Vec<TypeDef>, Vec<ProtoDef>)> {
        let mut types = Vec::new();
        let mut protos = Vec::new();
        loop {
            match &self.tok {
                Tok::End => return Ok((types, protos)),
                Tok::Punct(b'.') => types.push(self.typedef()?),
                Tok::Word(_) => protos.push(self.protocol()?),
                _ => {
                    return Err(
                        self.expected("a type (.Name { ... }) or a protocol (name tag { ... })")
                    )
                }
            }
        }
    }

    fn typedef(&mut self) -> PResult<TypeDef> {
        let line = self.line;
        self.punct(b'.', "'.'")?;
        let name = self.name("a type name after '.'")?;
        let body = self.body()?;
        Ok((name, line, body))
    }

    fn body(&mut self) -> PResult<Body> {
        self.punct(b'{', "'{'")?;
        let mut body = Body::default();
        loop {
            match &self.tok {
                Tok::Punct(b'}') => {
                    self.advance()?;
                    return Ok(body);
                }
                Tok::Punct(b'.') => body.types.push(self.typedef()?),
                Tok::Word(_) => body.fields.push(self.field()?),
                _ => return Err(self.expected("a field (name tag : type), a nested type or '}'")),
            }
        }
    }

    fn field(&mut self) -> PResult<FieldDef> {
        let line = self.line;
        let name = self.name("a field name")?;
        let tag = self.tag(&format!("the tag of field {name}"))?;
        self.punct(b':', &format!("':' after the tag of field {name}"))?;
        let array = self.tok == Tok::Punct(b'*');
        if array {
            self.advance()?;
        }
        let typename = self.typename(&format!("the type of field {name}"))?;
        let mut paren = None;
        if self.tok == Tok::Punct(b'(') {
            self.advance()?;
            paren = Some(match &self.tok {
                Tok::Word(w) if !w.contains('.') => {
                    let w = w.clone();
                    self.advance()?;
                    Paren::Key(w)
                }
                Tok::Number(n) => {
                    let n = n.clone();
                    self.advance()?;
                    Paren::Number(n)
                }
                Tok::Punct(b')') => Paren::Key(String::new()),
                _ => return Err(self.expected("a key field name, a decimal precision or ')'")),
            });
            self.punct(b')', "')'")?;
        }
        Ok(FieldDef {
            name,
            tag,
            array,
            typename,
            paren,
            line,
        })
    }

    fn protocol(&mut self) -> PResult<ProtoDef> {
        let line = self.line;
        let name = self.name("a protocol name")?;
        let tag = self.tag(&format!("the tag of protocol {name}"))?;
        self.punct(b'{', &format!("'{{' after the tag of protocol {name}"))?;
        let mut subs = Vec::new();
        loop {
            match &self.tok {
                Tok::Punct(b'}') => {
                    self.advance()?;
                    return Ok(ProtoDef {
                        name,
                        tag,
                        line,
                        subs,
                    });
                }
                Tok::Word(w) if w == "request" || w == "response" => {
                    let which = w.clone();
                    let sline = self.line;
                    self.advance()?;
                    let sub = if self.tok == Tok::Punct(b'{') {
                        Sub::Inline(self.body()?)
                    } else {
                        Sub::Named(self.typename(&format!("a type or '{{' after {which}"))?)
                    };
                    subs.push((which, sline, sub));
                }
                _ => {
                    return Err(
                        self.expected(&format!("request, response or '}}' in protocol {name}"))
                    )
                }
            }
        }
    }
}

/// A type after the first pass: its fields sorted by tag.
struct TypeInfo {
    line: usize,
    fields: Vec<FieldDef>,
}

struct Compiler {
    file: String,
    types: BTreeMap<String, TypeInfo>,
}

impl Compiler {
    fn error(&self, line: usize, what: String) -> ParseError {
        ParseError {
            line,
            message: format!("{what} at [{}] line ({line})", self.file),
        }
    }

    fn add_type(&mut self, full: String, line: usize, body: Body) -> PResult<()> {
        if let Some(old) = self.types.get(&full) {
            return Err(self.error(
                line,
                format!("redefined type {full} (first defined at line {})", old.line),
            ));
        }
        // Reserve the name before the nested types are added.
        self.types.insert(
            full.clone(),
            TypeInfo {
                line,
                fields: Vec::new(),
            },
        );
        let mut names = BTreeMap::new();
        let mut tags = BTreeMap::new();
        for f in &body.fields {
            if names.insert(f.name.clone(), f.line).is_some() {
                return Err(self.error(f.line, format!("redefine {} in type {full}", f.name)));
            }
            if tags.insert(f.tag, f.line).is_some() {
                return Err(self.error(f.line, format!("redefine tag {} in type {full}", f.tag)));
            }
        }
        for (name, tline, sub) in body.types {
            self.add_type(format!("{full}.{name}"), tline, sub)?;
        }
        let mut fields = body.fields;
        fields.sort_by_key(|f| f.tag);
        if let Some(t) = self.types.get_mut(&full) {
            t.fields = fields;
        }
        Ok(())
    }

    /// The full name `t` means inside type `scope`: a builtin, a type nested
    /// in `scope` or one of its parents, or a top-level type.
    fn resolve(&self, scope: &str, t: &str) -> Option<String> {
        if builtin(t).is_some() {
            return Some(t.to_string());
        }
        let mut scope = Some(scope);
        while let Some(s) = scope {
            let full = format!("{s}.{t}");
            if self.types.contains_key(&full) {
                return Some(full);
            }
            scope = s.rsplit_once('.').map(|(a, _)| a);
        }
        self.types.contains_key(t).then(|| t.to_string())
    }
}

/// Builtin type number and string sub type (binary = 1).
fn builtin(t: &str) -> Option<(u32, Option<u32>)> {
    Some(match t {
        "integer" => (0, None),
        "boolean" => (1, None),
        "string" => (2, None),
        "binary" => (2, Some(1)),
        "double" => (3, None),
        _ => return None,
    })
}

fn pack_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn pack_value(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&(((v + 1) * 2) as u16).to_le_bytes());
}

/// Compiles schema text. `file` names the text in error messages (skynet's
/// default is `=text`).
pub fn parse(text: &[u8], file: &str) -> Result<Vec<u8>, ParseError> {
    let mut p = Parser {
        lex: Lexer {
            s: text,
            i: 0,
            line: 1,
        },
        tok: Tok::End,
        line: 1,
        file: file.to_string(),
    };
    p.advance()?;
    let (types, protos) = p.schema()?;
    let mut c = Compiler {
        file: file.to_string(),
        types: BTreeMap::new(),
    };
    for (name, line, body) in types {
        c.add_type(name, line, body)?;
    }
    // Protocols: inline request/response types are named proto.request and
    // proto.response.
    struct P {
        name: String,
        tag: u32,
        request: Option<String>,
        response: Option<String>,
        confirm: bool,
    }
    let mut plist: Vec<P> = Vec::new();
    let mut pnames: BTreeMap<String, usize> = BTreeMap::new();
    let mut ptags: BTreeMap<u32, String> = BTreeMap::new();
    for d in protos {
        if let Some(first) = pnames.get(&d.name) {
            return Err(c.error(
                d.line,
                format!(
                    "redefined protocol {} (first defined at line {first})",
                    d.name
                ),
            ));
        }
        pnames.insert(d.name.clone(), d.line);
        if let Some(other) = ptags.get(&d.tag) {
            return Err(c.error(
                d.line,
                format!(
                    "redefined protocol tag {} at {} (also the tag of {other})",
                    d.tag, d.name
                ),
            ));
        }
        ptags.insert(d.tag, d.name.clone());
        let mut p = P {
            name: d.name.clone(),
            tag: d.tag,
            request: None,
            response: None,
            confirm: false,
        };
        let mut seen = (false, false);
        for (which, line, sub) in d.subs {
            let is_req = which == "request";
            let twice = if is_req { &mut seen.0 } else { &mut seen.1 };
            if *twice {
                return Err(c.error(line, format!("redefine {which} in protocol {}", d.name)));
            }
            *twice = true;
            let typename = match sub {
                Sub::Inline(body) => {
                    let full = format!("{}.{which}", d.name);
                    c.add_type(full.clone(), line, body)?;
                    full
                }
                Sub::Named(n) if n == "nil" => {
                    if !is_req {
                        p.confirm = true;
                    }
                    continue;
                }
                Sub::Named(n) => {
                    if !c.types.contains_key(&n) {
                        return Err(c.error(
                            line,
                            format!("Undefined {which} type {n} in protocol {}", d.name),
                        ));
                    }
                    n
                }
            };
            if is_req {
                p.request = Some(typename);
            } else {
                p.response = Some(typename);
            }
        }
        plist.push(p);
    }
    // Resolve field types.
    let names: Vec<String> = c.types.keys().cloned().collect();
    let mut resolved: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for tn in &names {
        let mut r = Vec::new();
        for f in &c.types[tn].fields {
            match c.resolve(tn, &f.typename) {
                Some(full) => r.push(full),
                None => {
                    return Err(c.error(
                        f.line,
                        format!("Undefined type {} in type {tn}", f.typename),
                    ))
                }
            }
        }
        resolved.insert(tn.clone(), r);
    }
    if names.len() > MAX_TAG as usize + 1 {
        return Err(c.error(1, format!("too many types ({})", names.len())));
    }
    let id: BTreeMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u32))
        .collect();

    let mut type_list = Vec::new();
    for tn in &names {
        let info = &c.types[tn];
        let mut fields = Vec::new();
        for (f, ftype) in info.fields.iter().zip(&resolved[tn]) {
            let b = builtin(ftype);
            let mut extra = b.and_then(|(_, e)| e);
            let mut key = None;
            let mut map = false;
            match (&f.paren, b) {
                (None, _) => {}
                (Some(Paren::Number(n)), Some((0, _))) => {
                    let prec = n.parse::<u32>().ok().filter(|&p| p <= MAX_DECIMAL).ok_or_else(|| {
                        c.error(f.line, format!("decimal precision {n} of field {} in type {tn} is out of range (0..{MAX_DECIMAL})", f.name))
                    })?;
                    extra = Some(prec);
                }
                (Some(Paren::Key(k)), Some((0, _))) => {
                    return Err(c.error(
                        f.line,
                        format!(
                            "invalid decimal precision ({k}) of field {} in type {tn}",
                            f.name
                        ),
                    ))
                }
                (Some(p), Some(_)) => {
                    let shown = match p {
                        Paren::Key(k) | Paren::Number(k) => k,
                    };
                    return Err(c.error(f.line, format!("Invalid map index :{shown} (field {} in type {tn} is not an array of structs)", f.name)));
                }
                (Some(p), None) => {
                    if !f.array {
                        return Err(c.error(
                            f.line,
                            format!(
                                "field {} in type {tn}: a key needs an array (*{})",
                                f.name, f.typename
                            ),
                        ));
                    }
                    let sub = &c.types[ftype];
                    let kname = match p {
                        Paren::Key(k) if k.is_empty() => {
                            if sub.fields.len() != 2 {
                                return Err(c.error(
                                    f.line,
                                    format!(
                                        "Invalid map definition: {}, must only have two fields",
                                        f.name
                                    ),
                                ));
                            }
                            map = true;
                            sub.fields[0].name.clone()
                        }
                        Paren::Key(k) | Paren::Number(k) => k.clone(),
                    };
                    let kfield = sub
                        .fields
                        .iter()
                        .zip(&resolved[ftype])
                        .find(|(sf, _)| sf.name == kname);
                    match kfield {
                        Some((sf, st)) if builtin(st).is_some() => key = Some(sf.tag),
                        _ => {
                            return Err(c.error(
                                f.line,
                                format!(
                                    "Invalid map index :{kname} (in field {} of type {tn})",
                                    f.name
                                ),
                            ))
                        }
                    }
                }
            }
            // One encoded field: name, builtin or type, tag, array, key, map.
            let mut fb = Vec::new();
            let count: u16 = match (f.array, key, map) {
                (false, _, _) => 4,
                (true, None, _) => 5,
                (true, Some(_), false) => 6,
                (true, Some(_), true) => 7,
            };
            fb.extend_from_slice(&count.to_le_bytes());
            fb.extend_from_slice(&[0, 0]);
            match b {
                Some((n, _)) => {
                    pack_value(&mut fb, n);
                    match extra {
                        Some(e) => pack_value(&mut fb, e),
                        None => fb.extend_from_slice(&[1, 0]),
                    }
                }
                None => {
                    fb.extend_from_slice(&[1, 0]);
                    pack_value(&mut fb, id[ftype.as_str()]);
                }
            }
            pack_value(&mut fb, f.tag);
            if f.array {
                pack_value(&mut fb, 1);
                if let Some(k) = key {
                    pack_value(&mut fb, k);
                    if map {
                        pack_value(&mut fb, 1);
                    }
                }
            }
            pack_bytes(&mut fb, f.name.as_bytes());
            pack_bytes(&mut fields, &fb);
        }
        let mut tb = Vec::new();
        if fields.is_empty() {
            tb.extend_from_slice(&[1, 0, 0, 0]);
            pack_bytes(&mut tb, tn.as_bytes());
        } else {
            tb.extend_from_slice(&[2, 0, 0, 0, 0, 0]);
            pack_bytes(&mut tb, tn.as_bytes());
            pack_bytes(&mut tb, &fields);
        }
        pack_bytes(&mut type_list, &tb);
    }

    if names.is_empty() && plist.is_empty() {
        return Ok(vec![0, 0]);
    }
    plist.sort_by_key(|p| p.tag);
    let mut proto_list = Vec::new();
    for p in &plist {
        let mut pb = Vec::new();
        pb.extend_from_slice(&[4, 0, 0, 0]);
        pack_value(&mut pb, p.tag);
        if p.request.is_none() && p.response.is_none() && !p.confirm {
            pb[0] = 2;
        } else {
            match &p.request {
                Some(r) => pack_value(&mut pb, id[r.as_str()]),
                None => pb.extend_from_slice(&[1, 0]),
            }
            match &p.response {
                Some(r) => pack_value(&mut pb, id[r.as_str()]),
                None if p.confirm => {
                    pb[0] = 5;
                    pb.extend_from_slice(&[1, 0]);
                    pack_value(&mut pb, 1);
                }
                None => pb[0] = 3,
            }
        }
        pack_bytes(&mut pb, p.name.as_bytes());
        pack_bytes(&mut proto_list, &pb);
    }
    let mut out = Vec::new();
    if plist.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0]);
        pack_bytes(&mut out, &type_list);
    } else {
        out.extend_from_slice(&[2, 0, 0, 0, 0, 0]);
        pack_bytes(&mut out, &type_list);
        pack_bytes(&mut out, &proto_list);
    }
    Ok(out)
}
