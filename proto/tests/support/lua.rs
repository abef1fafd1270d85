//! A Lua value model with Lua's table semantics, a parser for the subset of
//! Lua expressions used in the vector files, and a conversion from decoded
//! seri values.
//!
//! Tables are normalized: keys are unique (an integral float key is the
//! integer), nil values are absent, and entries are sorted, so two tables
//! compare equal when Lua would see the same contents.

use skynet_proto::seri::Value;

/// 2^63: integral floats in [-2^63, 2^63) convert to Lua integers.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

#[derive(Debug, Clone, PartialEq)]
pub enum Lua {
    Nil,
    Bool(bool),
    Int(i64),
    /// Bit pattern of the float.
    Float(u64),
    Str(Vec<u8>),
    Userdata,
    Table(Vec<(Lua, Lua)>),
}

impl Lua {
    fn float(f: f64) -> Lua {
        Lua::Float(f.to_bits())
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Lua::Int(i) => Some(*i as f64),
            Lua::Float(b) => Some(f64::from_bits(*b)),
            _ => None,
        }
    }

    /// Key normalization: integral floats become integers.
    fn key(self) -> Result<Lua, String> {
        match self {
            Lua::Nil => Err("table index is nil".into()),
            Lua::Float(bits) => {
                let f = f64::from_bits(bits);
                if f.is_nan() {
                    Err("table index is NaN".into())
                } else if f.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&f) {
                    Ok(Lua::Int(f as i64))
                } else {
                    Ok(Lua::Float(bits))
                }
            }
            k => Ok(k),
        }
    }

    /// The length of the longest run t[1], t[2], ... of non-nil values.
    pub fn border(entries: &[(Lua, Lua)]) -> usize {
        let mut n = 0;
        while entries.iter().any(|(k, _)| *k == Lua::Int(n as i64 + 1)) {
            n += 1;
        }
        n
    }
}

/// Builds a normalized table by assigning `pairs` in order (rawset rules).
pub fn build_table(pairs: Vec<(Lua, Lua)>) -> Result<Lua, String> {
    let mut entries: Vec<(Lua, Lua)> = Vec::new();
    for (k, v) in pairs {
        let k = k.key()?;
        // Tables are keys by identity: two table keys are never the same key.
        let pos = if matches!(k, Lua::Table(_)) {
            None
        } else {
            entries.iter().position(|(e, _)| *e == k)
        };
        match (pos, v) {
            (Some(i), Lua::Nil) => {
                entries.remove(i);
            }
            (Some(i), v) => entries[i].1 = v,
            (None, Lua::Nil) => {}
            (None, v) => entries.push((k, v)),
        }
    }
    entries.sort_by_key(|(k, _)| format!("{k:?}"));
    Ok(Lua::Table(entries))
}

/// The Lua value a decoded seri value stands for.
pub fn from_value(v: &Value) -> Result<Lua, String> {
    Ok(match v {
        Value::Nil => Lua::Nil,
        Value::Boolean(b) => Lua::Bool(*b),
        Value::Integer(i) => Lua::Int(*i),
        Value::Real(r) => Lua::float(*r),
        Value::Pointer(_) => Lua::Userdata,
        Value::String(s) => Lua::Str(s.clone()),
        Value::Table { array, hash } => {
            let mut pairs = Vec::new();
            for (i, item) in array.iter().enumerate() {
                pairs.push((Lua::Int(i as i64 + 1), from_value(item)?));
            }
            for (k, v) in hash {
                pairs.push((from_value(k)?, from_value(v)?));
            }
            build_table(pairs)?
        }
    })
}

/// Splits an expression list at its top-level commas and returns the number
/// of expressions (0 for an empty list). Works on any Lua text in the files.
pub fn count_top_level(expr: &str) -> usize {
    let b = expr.as_bytes();
    if expr.trim().is_empty() {
        return 0;
    }
    let (mut depth, mut count, mut i) = (0i32, 1, 0);
    while i < b.len() {
        match b[i] {
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => depth -= 1,
            b',' if depth == 0 => count += 1,
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    count
}

/// Parses an expression list. Errors name what is unsupported.
pub fn parse_list(src: &str) -> Result<Vec<Lua>, String> {
    let mut p = Parser {
        s: src.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    p.ws();
    if p.i == p.s.len() {
        return Ok(out);
    }
    loop {
        out.push(p.expr()?);
        p.ws();
        if p.eat(b",") {
            continue;
        }
        if p.i == p.s.len() {
            return Ok(out);
        }
        return Err(format!("unexpected text at {}: {}", p.i, &src[p.i..]));
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, t: &[u8]) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(t) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &[u8]) -> Result<(), String> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(format!(
                "expected {:?} at {}",
                String::from_utf8_lossy(t),
                self.i
            ))
        }
    }

    fn name(&mut self) -> Option<String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            if self.i == start && self.s[self.i].is_ascii_digit() {
                return None;
            }
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    // expr := unary ('/' unary)*
    fn expr(&mut self) -> Result<Lua, String> {
        let mut v = self.unary()?;
        loop {
            self.ws();
            if self.peek() == Some(b'/') {
                self.i += 1;
                let rhs = self.unary()?;
                let (a, b) = (num(&v)?, num(&rhs)?);
                let q = a / b;
                // The reference machine (x86-64) produces the negative quiet NaN.
                v = if q.is_nan() {
                    Lua::Float(0xfff8_0000_0000_0000)
                } else {
                    Lua::float(q)
                };
            } else {
                return Ok(v);
            }
        }
    }

    // unary := '-' unary | power
    fn unary(&mut self) -> Result<Lua, String> {
        self.ws();
        if self.peek() == Some(b'-') {
            self.i += 1;
            return Ok(match self.unary()? {
                Lua::Int(i) => Lua::Int(i.wrapping_neg()),
                Lua::Float(b) => Lua::Float(b ^ (1 << 63)),
                other => return Err(format!("cannot negate {other:?}")),
            });
        }
        self.power()
    }

    // power := primary ('^' unary)?
    fn power(&mut self) -> Result<Lua, String> {
        let base = self.primary()?;
        self.ws();
        if self.peek() == Some(b'^') {
            self.i += 1;
            let e = self.unary()?;
            return Ok(Lua::float(num(&base)?.powf(num(&e)?)));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Lua, String> {
        self.ws();
        match self.peek() {
            None => Err("unexpected end".into()),
            Some(b'"') | Some(b'\'') => self.string().map(Lua::Str),
            Some(b'{') => self.table(),
            Some(b'(') => {
                self.i += 1;
                let v = self.expr()?;
                self.expect(b")")?;
                Ok(v)
            }
            Some(b'<') => {
                self.expect(b"<userdata>")?;
                Ok(Lua::Userdata)
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => self.number(),
            Some(_) => {
                let name = self
                    .name()
                    .ok_or_else(|| format!("unsupported at {}", self.i))?;
                match name.as_str() {
                    "nil" => Ok(Lua::Nil),
                    "true" => Ok(Lua::Bool(true)),
                    "false" => Ok(Lua::Bool(false)),
                    "math" | "string" => {
                        self.expect(b".")?;
                        let member = self.name().unwrap_or_default();
                        match (name.as_str(), member.as_str()) {
                            ("math", "maxinteger") => Ok(Lua::Int(i64::MAX)),
                            ("math", "mininteger") => Ok(Lua::Int(i64::MIN)),
                            ("math", "huge") => Ok(Lua::float(f64::INFINITY)),
                            ("math", "pi") => Ok(Lua::float(std::f64::consts::PI)),
                            ("string", "rep") => {
                                self.expect(b"(")?;
                                let s = self.expr()?;
                                self.expect(b",")?;
                                let n = self.expr()?;
                                self.expect(b")")?;
                                match (s, n) {
                                    (Lua::Str(s), Lua::Int(n)) => {
                                        Ok(Lua::Str(s.repeat(n as usize)))
                                    }
                                    _ => Err("bad string.rep".into()),
                                }
                            }
                            _ => Err(format!("unsupported {name}.{member}")),
                        }
                    }
                    other => Err(format!("unsupported name {other}")),
                }
            }
        }
    }

    fn number(&mut self) -> Result<Lua, String> {
        let start = self.i;
        if self.s[self.i..].starts_with(b"0x") || self.s[self.i..].starts_with(b"0X") {
            self.i += 2;
            let digits_start = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_hexdigit() {
                self.i += 1;
            }
            let digits =
                std::str::from_utf8(&self.s[digits_start..self.i]).map_err(|e| e.to_string())?;
            // Lua hex integers wrap around.
            let v = u64::from_str_radix(digits, 16).map_err(|e| e.to_string())?;
            return Ok(Lua::Int(v as i64));
        }
        let mut is_float = false;
        while self.i < self.s.len() {
            let c = self.s[self.i];
            if c.is_ascii_digit() {
                self.i += 1;
            } else if c == b'.' || c == b'e' || c == b'E' {
                is_float = true;
                self.i += 1;
                if (c == b'e' || c == b'E') && matches!(self.peek(), Some(b'+' | b'-')) {
                    self.i += 1;
                }
            } else {
                break;
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
        if !is_float {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Lua::Int(i));
            }
        }
        text.parse::<f64>()
            .map(Lua::float)
            .map_err(|e| format!("{text}: {e}"))
    }

    fn string(&mut self) -> Result<Vec<u8>, String> {
        let q = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            if c == q {
                return Ok(out);
            }
            if c != b'\\' {
                out.push(c);
                continue;
            }
            let e = *self.s.get(self.i).ok_or("bad escape")?;
            self.i += 1;
            match e {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'\\' | b'"' | b'\'' => out.push(e),
                b'0'..=b'9' => {
                    let mut v = u32::from(e - b'0');
                    for _ in 0..2 {
                        match self.peek() {
                            Some(d @ b'0'..=b'9') => {
                                v = v * 10 + u32::from(d - b'0');
                                self.i += 1;
                            }
                            _ => break,
                        }
                    }
                    out.push(u8::try_from(v).map_err(|_| "escape too large")?);
                }
                other => return Err(format!("unsupported escape \\{}", other as char)),
            }
        }
    }

    fn table(&mut self) -> Result<Lua, String> {
        self.expect(b"{")?;
        let mut keyed = Vec::new();
        let mut positional = Vec::new();
        loop {
            if self.eat(b"}") {
                break;
            }
            self.ws();
            if self.peek() == Some(b'[') {
                self.i += 1;
                let k = self.expr()?;
                self.expect(b"]")?;
                self.expect(b"=")?;
                keyed.push((k, self.expr()?));
            } else {
                let save = self.i;
                let named = match self.name() {
                    Some(n)
                        if !matches!(n.as_str(), "nil" | "true" | "false" | "math" | "string") =>
                    {
                        self.ws();
                        if self.peek() == Some(b'=') && self.s.get(self.i + 1) != Some(&b'=') {
                            self.i += 1;
                            Some(n)
                        } else {
                            None
                        }
                    }
                    _ => None,
                };
                match named {
                    Some(n) => keyed.push((Lua::Str(n.into_bytes()), self.expr()?)),
                    None => {
                        self.i = save;
                        positional.push(self.expr()?);
                    }
                }
            }
            if !(self.eat(b",") || self.eat(b";")) {
                self.expect(b"}")?;
                break;
            }
        }
        // Keyed fields are stored as they come; positional items are stored
        // at the end (as Lua does for constructors of fewer than 50 items).
        let mut pairs = keyed;
        for (i, v) in positional.into_iter().enumerate() {
            pairs.push((Lua::Int(i as i64 + 1), v));
        }
        build_table(pairs)
    }
}

fn num(v: &Lua) -> Result<f64, String> {
    v.as_f64().ok_or_else(|| format!("not a number: {v:?}"))
}
