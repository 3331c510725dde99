"""The compile cache's entries, read independently of dlc (support/cache.h has the format).

  entries.py check DIR             print how many entries DIR holds and whether each validates
                                   (magic, format, header size, key = file name, length, SHA-256);
                                   exit 1 if any does not or anything else is in DIR
  entries.py truncate DIR N        cut every entry to N bytes
  entries.py flip DIR OFFSET       complement the byte at OFFSET of every entry (negative: from the end)
  entries.py garbage DIR           replace every entry with text
  entries.py tunes DIR             print how many entries are max-autotune records (payload
                                   "DLCTUNE1" and six int64 parameters, codegen/cpu/tune.c)
  entries.py forge DIR             rewrite every max-autotune record as a valid entry whose
                                   parameters are not (vec 3: no CPU's vector width)
"""
import hashlib
import os
import struct
import sys

HEADER = 96


def entries(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".dlcache"))


def valid(path, name):
    data = open(path, "rb").read()
    if len(data) < HEADER:
        return "shorter than the header"
    magic, fmt, hsize, key, length, digest = struct.unpack("<8sII32sQ32s", data[:88])
    if magic != b"DLCCACHE" or fmt != 1 or hsize != HEADER:
        return "bad magic, format or header size"
    if key.hex() + ".dlcache" != name:
        return "another key's entry"
    if length != len(data) - HEADER:
        return "length %d, payload %d" % (length, len(data) - HEADER)
    if hashlib.sha256(data[HEADER:]).digest() != digest:
        return "checksum mismatch"
    return None


def main():
    cmd, d = sys.argv[1], sys.argv[2]
    if cmd == "check":
        bad = 0
        for name in entries(d):
            why = valid(os.path.join(d, name), name)
            if why:
                print("invalid entry %s: %s" % (name, why))
                bad += 1
        others = [f for f in os.listdir(d) if not f.endswith(".dlcache")]
        for f in others:
            print("not an entry: %s" % f)
        print("%d entries, %d invalid, %d other files" % (len(entries(d)), bad, len(others)))
        sys.exit(1 if bad or others else 0)
    if cmd in ("tunes", "forge"):
        n = 0
        for name in entries(d):
            path = os.path.join(d, name)
            data = open(path, "rb").read()
            if len(data) != HEADER + 56 or data[HEADER:HEADER + 8] != b"DLCTUNE1":
                continue
            n += 1
            if cmd == "forge":
                payload = b"DLCTUNE1" + struct.pack("<6q", 3, 6, 64, 256, 192, 2048)
                head = data[:48] + struct.pack("<Q", len(payload)) + hashlib.sha256(payload).digest() + data[88:96]
                open(path, "wb").write(head + payload)
        print("%d max-autotune records" % n)
        return
    for name in entries(d):
        path = os.path.join(d, name)
        data = bytearray(open(path, "rb").read())
        if cmd == "truncate":
            data = data[: int(sys.argv[3])]
        elif cmd == "flip":
            data[int(sys.argv[3])] ^= 0xFF
        elif cmd == "garbage":
            data = bytearray(b"not a cache entry\n")
        else:
            sys.exit("unknown command " + cmd)
        open(path, "wb").write(data)


main()
