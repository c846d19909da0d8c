#!/usr/bin/python3
"""net-snmp pass_persist helper for the printwatch SNMP test bed.

    pass_persist .1.3.6.1.2.1.43 /path/printer-mib.py /path/printer.data .1.3.6.1.2.1.43 [LOG]

Serves the OIDs of DATA-FILE that lie under BASE-OID (get and getnext;
sets are refused). The file is read on every request (and parsed again when
its text changed), so a test changes
what the "printer" reports by rewriting it (write a temporary file and rename
it over the old one, so a request never sees half a file).

Data file: one value a line, `OID TYPE VALUE`; `#` starts a comment line.
TYPE is a pass_persist type: integer, unsigned, gauge, counter, counter64,
timeticks, ipaddress, objectid, string, octet. A string value is the rest of
the line (surrounding double quotes are dropped); an octet value is hex bytes,
e.g. `40 00` (hrPrinterDetectedErrorState with noPaper set).

Malformed lines are skipped and reported to LOG (appended), never to stderr:
snmpd gives the helper no usable stderr, and a failed write would kill it.
"""

import sys

LOG_PATH = None


def warn(msg):
    if LOG_PATH is None:
        return
    try:
        with open(LOG_PATH, "a", encoding="utf-8") as f:
            f.write(f"printer-mib: {msg}\n")
    except OSError:
        pass

TYPES = {
    "integer", "unsigned", "gauge", "counter", "counter64", "timeticks",
    "ipaddress", "objectid", "string", "octet",
}


def oid_key(oid):
    return tuple(int(p) for p in oid.strip(".").split(".") if p)


# The last parse by the file's text: a test may replace the file at any
# moment, and reading it is cheap, but parsing it for every request of a
# fleet (hundreds a second) is not.
_CACHE = {}


def load(path, base):
    """The rows under `base`, sorted by OID, re-parsed when the file's text changed."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        warn(f"cannot read {path}: {e}")
        return []
    hit = _CACHE.get(base)
    if hit is not None and hit[0] == text:
        return hit[1]
    rows = parse(path, text, base)
    _CACHE[base] = (text, rows)
    return rows


def parse(path, text, base):
    """The rows under `base`, sorted by OID: [(key, oid, type, value)]."""
    rows = {}
    lines = text.splitlines()
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 2 or parts[1].lower() not in TYPES:
            warn(f"{path}:{n}: ignored: {line}")
            continue
        oid, typ = parts[0], parts[1].lower()
        value = parts[2] if len(parts) > 2 else ""
        if typ == "string" and len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        try:
            key = oid_key(oid)
        except ValueError:
            warn(f"{path}:{n}: bad OID: {oid}")
            continue
        if key[: len(base)] != base:
            continue
        rows[key] = ("." + ".".join(map(str, key)), typ, value)
    return [(k,) + rows[k] for k in sorted(rows)]


def answer(row):
    _, oid, typ, value = row
    return f"{oid}\n{typ}\n{value}\n"


def main():
    global LOG_PATH
    if len(sys.argv) not in (3, 4):
        sys.stderr.write("usage: printer-mib.py DATA-FILE BASE-OID [LOG]\n")
        return 2
    path, base = sys.argv[1], oid_key(sys.argv[2])
    LOG_PATH = sys.argv[3] if len(sys.argv) == 4 else None
    out = sys.stdout
    while True:
        cmd = sys.stdin.readline()
        if not cmd:
            return 0
        cmd = cmd.strip()
        if cmd == "PING":
            out.write("PONG\n")
        elif cmd in ("get", "getnext"):
            try:
                key = oid_key(sys.stdin.readline())
            except ValueError:
                out.write("NONE\n")
                out.flush()
                continue
            rows = load(path, base)
            if cmd == "get":
                hit = next((r for r in rows if r[0] == key), None)
            else:
                hit = next((r for r in rows if r[0] > key), None)
            out.write(answer(hit) if hit else "NONE\n")
        elif cmd == "set":
            sys.stdin.readline()
            sys.stdin.readline()
            out.write("not-writable\n")
        elif cmd == "":
            continue
        else:
            out.write("NONE\n")
        out.flush()


if __name__ == "__main__":
    sys.exit(main())
