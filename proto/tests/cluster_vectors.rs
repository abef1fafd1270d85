//! The cluster format against `test/vectors/cluster.txt` (calls made on C
//! skynet's lua-cluster.c; the file's header describes it), without Lua:
//! every encoder row whose arguments the wire format can take, and every
//! decoder row, rendered the way the file renders Lua results.

use md5::{Digest, Md5};
use skynet_proto::cluster::{
    decode_request, decode_response, next_session, request, response, trace, Packet, Request,
    Response, ResponsePackets, Target,
};
use std::path::PathBuf;

fn vectors() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../test/vectors/cluster.txt");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn pattern(n: usize, seed: usize, off: usize) -> Vec<u8> {
    (off..off + n)
        .map(|i| ((seed + i * 131 + (i >> 8)) & 0xff) as u8)
        .collect()
}

/// The bytes of a string token (s, r, c, m, M); None for other kinds.
fn bytes_of(tok: &str) -> Option<Vec<u8>> {
    let (tag, rest) = tok.split_at(1);
    let nums = |s: &str| -> Vec<usize> { s.split(':').map(|x| x.parse().unwrap()).collect() };
    match tag {
        "s" | "m" => Some(hex(rest)),
        "r" | "M" => {
            let v = nums(rest);
            Some(pattern(v[0], v[1], 0))
        }
        "c" => {
            let (h, p) = rest.split_once('+').unwrap();
            let v = nums(p);
            let mut b = hex(h);
            b.extend(pattern(v[0], v[1], v[2]));
            Some(b)
        }
        _ => None,
    }
}

fn render(b: &[u8]) -> String {
    if b.len() <= 96 {
        format!("s{}", to_hex(b))
    } else {
        let d = Md5::digest(b);
        format!("h{}:{}:{}", b.len(), to_hex(&d), to_hex(&b[..16]))
    }
}

fn packet(p: &Packet) -> String {
    render(&p.to_vec())
}

fn int(tok: &str) -> Option<i64> {
    tok.strip_prefix('i')?.parse().ok()
}

/// Our result for an encoder row, or None when the arguments are beyond
/// what the wire format takes (Lua conversions, wrong types).
fn encode(func: &str, args: &[&str]) -> Option<String> {
    match func {
        "packrequest" | "packpush" => {
            if args.len() != 3 {
                return None;
            }
            let name;
            let addr = match int(args[0]) {
                Some(a) if (0..=u32::MAX as i64).contains(&a) => Target::Id(a as u32),
                Some(_) => return None,
                None => {
                    name = bytes_of(args[0]).filter(|_| args[0].starts_with('s'))?;
                    Target::Name(&name)
                }
            };
            let session = int(args[1]).filter(|s| (1..=i32::MAX as i64).contains(s))? as u32;
            let msg = match args[2].as_bytes()[0] {
                b'm' | b'M' => bytes_of(args[2])?,
                _ => return None,
            };
            Some(match request(addr, session, &msg, func == "packpush") {
                Err(e) => format!("!{e}"),
                Ok(p) => {
                    let mut s = format!("={},i{}", packet(&p.first), next_session(session));
                    if let Some(pieces) = p.pieces {
                        let t: Vec<String> = pieces.map(|x| packet(&x)).collect();
                        s += &format!(",T{}", t.join(";"));
                    }
                    s
                }
            })
        }
        "packtrace" => {
            let tag = bytes_of(args.first()?).filter(|_| args.len() == 1)?;
            Some(match trace(&tag) {
                Ok(p) => format!("={}", packet(&p)),
                Err(e) => format!("!{e}"),
            })
        }
        "packresponse" => {
            if args.len() != 3 {
                return None;
            }
            let session = int(args[0]).filter(|s| (0..=u32::MAX as i64).contains(s))? as u32;
            let ok = match args[1] {
                "b1" => true,
                "b0" => false,
                _ => return None,
            };
            let msg = bytes_of(args[2])?;
            Some(match response(session, ok, &msg) {
                Err(e) => format!("!{e}"),
                Ok(ResponsePackets::Single(p)) => format!("={}", packet(&p)),
                Ok(ResponsePackets::Multi { begin, pieces }) => {
                    let t: Vec<String> = std::iter::once(begin)
                        .chain(pieces)
                        .map(|x| packet(&x))
                        .collect();
                    format!("=T{}", t.join(";"))
                }
            })
        }
        _ => None,
    }
}

fn target(t: Target) -> String {
    match t {
        Target::Id(a) => format!("i{a}"),
        Target::Name(n) => render(n),
    }
}

fn b(v: bool) -> &'static str {
    if v {
        "b1"
    } else {
        "b0"
    }
}

/// Our result for a decoder row (a string argument).
fn decode(func: &str, args: &[&str]) -> Option<String> {
    if args.len() != 1 || !matches!(&args[0][..1], "s" | "c" | "m") {
        return None;
    }
    let body = bytes_of(args[0])?;
    Some(match func {
        "unpackrequest" => match decode_request(&body) {
            Err(e) => format!("!{e}"),
            Ok(Request::Single {
                target: t,
                session,
                msg,
            }) => {
                let mut s = format!("={},i{session},p{},i{}", target(t), render(msg), msg.len());
                if session == 0 {
                    s += ",n,b1";
                }
                s
            }
            Ok(Request::Begin {
                target: t,
                session,
                size,
                push,
            }) => format!("={},i{session},n,i{size},b1,{}", target(t), b(push)),
            Ok(Request::Piece { session, msg, last }) => {
                format!(
                    "=b0,i{session},p{},i{},{}",
                    render(msg),
                    msg.len(),
                    b(!last)
                )
            }
            Ok(Request::Trace(tag)) => format!("={}", render(tag)),
        },
        "unpackresponse" => match decode_response(&body) {
            Err(e) => format!("!{e}"),
            Ok(Response::Error { session, msg }) => format!("=i{session},b0,{}", render(msg)),
            Ok(Response::Ok { session, msg }) | Ok(Response::Last { session, msg }) => {
                format!("=i{session},b1,{}", render(msg))
            }
            Ok(Response::Begin { session, size }) => format!("=i{session},b1,i{size},b1"),
            Ok(Response::Piece { session, msg }) => format!("=i{session},b1,{},b1", render(msg)),
        },
        _ => return None,
    })
}

#[test]
fn cluster_format_matches_skynet() {
    let text = vectors();
    let (mut checked, mut failed) = (0, Vec::new());
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (func, want, flag) = (cols[0], cols[2], cols.get(3).copied().unwrap_or(""));
        let args: Vec<&str> = cols[1].split(',').collect();
        let Some(got) = encode(func, &args).or_else(|| decode(func, &args)) else {
            continue;
        };
        checked += 1;
        let pass = if flag == "strict" || want.starts_with('!') {
            got.starts_with('!')
        } else {
            got == want
        };
        if !pass {
            failed.push(format!(
                "{func} {}: want {want:.100} got {got:.100}",
                cols[1]
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {checked} differ:\n{}",
        failed.len(),
        failed.join("\n")
    );
    // The other rows need Lua (conversions, append, concat, isname).
    assert!(checked >= 950, "only {checked} rows checked");
}
