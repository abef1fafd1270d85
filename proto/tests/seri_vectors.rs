//! seri against the golden vectors: seri.tsv, seri_decode_errors.tsv and
//! seri_decode_lenient.tsv.

mod support;

use skynet_proto::seri::{self, DecodeError, Item, SeriReader, SeriWriter, Value};
use support::lua::{self, Lua};
use support::{hex, read_tsv, to_hex};

/// Walks a message token by token the way a binding would, without building
/// values: returns the number of top-level values.
fn walk(input: &[u8]) -> Result<usize, DecodeError> {
    fn value(r: &mut SeriReader<'_>, first: Item<'_>) -> Result<(), DecodeError> {
        if let Item::Table { array_len } = first {
            for _ in 0..array_len.max(0) {
                let item = r.read()?;
                value(r, item)?;
            }
            loop {
                let key = r.read()?;
                if key.is_nil() {
                    return Ok(());
                }
                value(r, key)?;
                let v = r.read()?;
                value(r, v)?;
            }
        }
        Ok(())
    }
    let mut r = SeriReader::new(input);
    let mut n = 0;
    while let Some(first) = r.next_item()? {
        value(&mut r, first)?;
        n += 1;
    }
    Ok(n)
}

#[test]
fn decode_errors_match_reference_text() {
    let rows = read_tsv("seri_decode_errors.tsv");
    assert!(
        rows.len() >= 40,
        "expected at least 40 rows, got {}",
        rows.len()
    );
    for row in &rows {
        let (id, input, message) = (&row[0], hex(&row[2]), &row[3]);
        let err = seri::unpack(&input).expect_err(id);
        assert_eq!(&err.to_string(), message, "{id}");
        // The token reader reports the same stream errors; the NaN key is
        // the caller's concern there.
        match walk(&input) {
            Err(e) => assert_eq!(e, err, "{id}: token walk"),
            Ok(_) => assert_eq!(err, DecodeError::NanKey, "{id}: token walk accepted it"),
        }
    }
}

#[test]
fn lenient_inputs_decode_like_reference() {
    let rows = read_tsv("seri_decode_lenient.tsv");
    assert!(
        rows.len() >= 28,
        "expected at least 28 rows, got {}",
        rows.len()
    );
    for row in &rows {
        let (id, input) = (&row[0], hex(&row[2]));
        let count: usize = row[3].parse().unwrap();
        let expected = lua::parse_list(row.get(4).map(String::as_str).unwrap_or(""))
            .unwrap_or_else(|e| panic!("{id}: cannot parse expected values: {e}"));
        let values = seri::unpack(&input).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(values.len(), count, "{id}");
        assert_eq!(walk(&input), Ok(count), "{id}: token walk");
        let got: Vec<Lua> = values.iter().map(|v| lua::from_value(v).unwrap()).collect();
        assert_eq!(got, expected, "{id}");
    }
}

/// Encodes a Lua value with the canonical rule (array part = the border,
/// everything else in the hash part); `None` when the value has no canonical
/// encoding (a table with two or more hash keys).
fn encode_canonical(values: &[Lua]) -> Option<Vec<u8>> {
    fn one(w: &mut SeriWriter<'_, Vec<u8>>, v: &Lua) -> Option<()> {
        match v {
            Lua::Nil => w.nil(),
            Lua::Bool(b) => w.boolean(*b),
            Lua::Int(i) => w.integer(*i),
            Lua::Float(bits) => w.real(f64::from_bits(*bits)),
            Lua::Str(s) => w.string(s).ok()?,
            Lua::Userdata => return None,
            Lua::Table(entries) => {
                let n = Lua::border(entries);
                let in_array = |k: &Lua| matches!(k, Lua::Int(i) if *i >= 1 && *i <= n as i64);
                let rest: Vec<_> = entries.iter().filter(|(k, _)| !in_array(k)).collect();
                if rest.len() > 1 {
                    return None;
                }
                w.table_begin(n);
                for i in 1..=n {
                    let (_, v) = entries.iter().find(|(k, _)| *k == Lua::Int(i as i64))?;
                    one(w, v)?;
                }
                for (k, v) in rest {
                    one(w, k)?;
                    one(w, v)?;
                }
                w.table_end();
            }
        }
        Some(())
    }
    let mut out = Vec::new();
    let mut w = SeriWriter::new(&mut out);
    for v in values {
        one(&mut w, v)?;
    }
    Some(out)
}

#[test]
fn seri_tsv_rows_decode_and_canonical_rows_round_trip() {
    let rows = read_tsv("seri.tsv");
    assert!(
        rows.len() >= 116,
        "expected at least 116 rows, got {}",
        rows.len()
    );
    let (mut canonical, mut compared, mut encoded) = (0, 0, 0);
    for row in &rows {
        let (id, expr, bytes, is_canonical) = (&row[0], &row[1], hex(&row[2]), row[3] == "yes");
        let values = seri::unpack(&bytes).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(
            values.len(),
            lua::count_top_level(expr),
            "{id}: value count"
        );
        assert_eq!(walk(&bytes), Ok(values.len()), "{id}: token walk");
        if is_canonical {
            canonical += 1;
            let repacked = seri::pack(&values).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(to_hex(&repacked), row[2], "{id}: decode -> pack");
        }
        // Where the expression is in the parsed subset, compare meanings, and
        // encode canonical rows straight from the expression.
        if let Ok(expected) = lua::parse_list(expr) {
            compared += 1;
            let got: Vec<Lua> = values.iter().map(|v| lua::from_value(v).unwrap()).collect();
            assert_eq!(got, expected, "{id}: decoded values");
            if is_canonical {
                let direct = encode_canonical(&expected)
                    .unwrap_or_else(|| panic!("{id}: no canonical form"));
                assert_eq!(
                    to_hex(&direct),
                    row[2],
                    "{id}: SeriWriter from the expression"
                );
                encoded += 1;
            }
        }
    }
    eprintln!("seri.tsv: {} rows, {canonical} canonical, {compared} compared by value, {encoded} encoded from expressions", rows.len());
    assert!(canonical >= 100, "only {canonical} canonical rows");
    assert!(compared >= 90, "only {compared} rows compared by value");
    assert!(
        encoded >= 80,
        "only {encoded} rows encoded from expressions"
    );
}

#[test]
fn nan_floats_keep_their_bits() {
    for bits in [
        0xfff8_0000_0000_0000u64,
        0x7ff8_0000_0000_0000,
        0x7ff0_0000_0000_0001,
    ] {
        let v = vec![Value::Real(f64::from_bits(bits))];
        let bytes = seri::pack(&v).unwrap();
        assert_eq!(&bytes[1..], &bits.to_le_bytes());
        assert_eq!(seri::unpack(&bytes).unwrap(), v);
    }
}

#[test]
fn every_truncation_of_a_valid_message_is_an_error() {
    // A message exercising every type; every strict prefix that cuts a value
    // must fail, and must never panic.
    let values = vec![
        Value::from("hello"),
        Value::Table {
            array: (1..=40).map(Value::Integer).collect(),
            hash: vec![
                (Value::from("k"), Value::Real(2.5)),
                (Value::Boolean(true), Value::string(vec![b'x'; 300])),
            ],
        },
        Value::Integer(-5),
        Value::Integer(1 << 40),
        Value::Pointer(7),
        Value::string(vec![b'y'; 70_000]),
    ];
    let bytes = seri::pack(&values).unwrap();
    let boundaries: Vec<usize> = {
        let mut b = vec![0];
        let mut acc = 0;
        for v in &values {
            acc += seri::pack(std::slice::from_ref(v)).unwrap().len();
            b.push(acc);
        }
        b
    };
    for cut in 0..bytes.len() {
        let r = seri::unpack(&bytes[..cut]);
        if boundaries.contains(&cut) {
            assert!(r.is_ok(), "cut at a value boundary {cut}");
        } else {
            assert!(r.is_err(), "cut at {cut} accepted");
        }
    }
    assert_eq!(seri::unpack(&bytes).unwrap(), values);
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = support::Lcg(42);
    for _ in 0..20_000 {
        let len = rng.next_below(24);
        let input: Vec<u8> = (0..len).map(|_| rng.next_below(256) as u8).collect();
        let a = seri::unpack(&input);
        let b = walk(&input);
        if let Ok(values) = &a {
            assert_eq!(b, Ok(values.len()));
        }
    }
}
