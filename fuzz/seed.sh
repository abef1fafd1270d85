#!/bin/sh
# Builds the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from
# the golden vectors (SKYNET_VECTORS, default ../shared/vectors from the
# repository root) and test/vectors. Corpora are not committed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
vectors=${SKYNET_VECTORS:-$root/../shared/vectors}
corpus=$here/corpus
[ -d "$vectors" ] || { echo "seed.sh: no vectors at $vectors (set SKYNET_VECTORS)" >&2; exit 1; }
mkdir -p "$corpus"
exec python3 - "$vectors" "$root/test/vectors" "$corpus" <<'PY'
import hashlib, os, re, sys
vectors, testvec, corpus = sys.argv[1:4]

def put(target, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)

def rows(name):
    p = os.path.join(vectors, name)
    if not os.path.exists(p):
        return
    for line in open(p, encoding="utf-8"):
        line = line.rstrip("\n")
        if line and not line.startswith("#"):
            yield line.split("\t")

def unhex(s):
    s = s.strip()
    try:
        return bytes.fromhex(s) if re.fullmatch(r"([0-9a-f]{2})*", s) else None
    except ValueError:
        return None

for name, col in [("seri.tsv", 2), ("seri_decode_errors.tsv", 2), ("seri_decode_lenient.tsv", 2)]:
    for r in rows(name):
        b = unhex(r[col]) if len(r) > col else None
        if b is not None:
            put("seri_roundtrip", b)
            put("lua_unpack", b)
for r in rows("master.tsv"):
    b = unhex(r[3]) if len(r) > 3 else None
    if b:
        put("master_packet", b)
        put("master_packet", b[1:])
for r in rows("harbor.tsv"):
    b = unhex(r[6]) if len(r) > 6 else None
    if b:
        put("harbor_frame", b"\x01" + b)
frames = b""
for r in rows("harbor_transcript.tsv"):
    b = unhex(r[5]) if len(r) > 5 else None
    if b and r[4] != "master_packet":
        frames += b
    elif b:
        put("master_packet", b)
if frames:
    put("harbor_frame", b"\x02" + frames[:4096])
# netpack: a limit byte, then each write as a feed of fd 0 (16-byte pieces).
for r in rows("netpack_stream.tsv"):
    script = bytearray([0xff])
    for w in r[1].split("|"):
        b = unhex(w)
        if b is None:
            continue
        for i in range(0, len(b), 15):
            piece = b[i:i + 15]
            script += bytes([len(piece) << 4]) + piece
            script += bytes([0x08])  # pop
    put("netpack_framer", bytes(script))
for r in rows("netpack.tsv"):
    b = unhex(r[3]) if len(r) > 3 else None
    if b is not None and len(b) < 64:
        put("sockbuf", bytes([min(len(b), 63) << 2]) + b + b"\x02\x00\x01")
for r in rows("sproto/sproto.tsv"):
    for col in (5, 6):
        b = unhex(r[col]) if len(r) > col else None
        if b:
            put("sproto_decode", b)
            put("sproto_pack", b)
for r in rows("sproto/sproto_pack.tsv"):
    for col in (2, 3):
        b = unhex(r[col]) if len(r) > col else None
        if b:
            put("sproto_pack", b)
p = os.path.join(vectors, "sproto", "addressbook.spb.hex")
if os.path.exists(p):
    put("sproto_schema", bytes.fromhex(open(p).read().strip()))
p = os.path.join(vectors, "sproto", "addressbook.sproto")
if os.path.exists(p):
    put("sproto_schema", open(p, "rb").read())
# cluster.core vectors: returned packets (s<hex>) without their u16 size.
p = os.path.join(testvec, "cluster.txt")
if os.path.exists(p):
    for line in open(p, encoding="utf-8"):
        if line.startswith("#"):
            continue
        for m in re.finditer(r"\bs([0-9a-f]{6,})", line):
            b = unhex(m.group(1))
            if b and len(b) > 2:
                put("cluster_packet", b[2:])
# config: hand-written, the loader's features.
put("config_loader", b'thread = 4\nharbor = $FUZZ_A\nname = $FUZZ_B\ninclude "a.lua"\n\0'
    b'x = 1.5 y = true z = "s" .. "t"\ninclude "sub/b.lua"\n\0$FUZZ_C\nw = x\n')
put("config_loader", b"t = {}\n")
put("config_loader", b"a = \n")
for t in sorted(os.listdir(corpus)):
    print(t, len(os.listdir(os.path.join(corpus, t))))
PY
