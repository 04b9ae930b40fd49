#!/usr/bin/env python3
"""Boot the lab guest under QEMU, wait for it to be ready, and take its memory dumps over QMP.

Usage: qmp_dump.py --console console.log --qmp qmp.sock --outdir DIR --result result.json
                   [--timeout 600] [--qemu-log qemu.log] -- qemu-system-x86_64 ARGS...

The guest prints "KVMTEST-READY" on its serial console (which QEMU writes to --console)
once the ground truth is on its truth disk, or "KVMTEST-FAILED <why>" when something
went wrong.  We then `stop` the VM, ask which dump formats this QEMU offers, write one
`dump-guest-memory` per format we want (ELF and every kdump-* flavour), and `quit`.
The result file records the capability list and the dumps written, and "loadavgAtStop":
after the ready line the guest prints "KVMTEST-LOADAVG <the /proc/loadavg text> uptime=<s>
cpu=<10 counters> cpu0=<...> ..." every ~100 ms until it is stopped; right after `stop` we
take the last complete such line (and the one before it) from the console, so the truth
knows what avenrun and the cpu lines of /proc/stat held just before the dump.
"""
import argparse
import json
import os
import re
import select
import socket
import subprocess
import sys
import time

READY = "KVMTEST-READY"
FAILED = "KVMTEST-FAILED"
# "KVMTEST-LOADAVG 0.44 0.30 0.12 3/85 123 uptime=51.23 cpu=1,0,2,... cpu0=...": /proc/loadavg as is,
# /proc/uptime's first field, then each cpu line of /proc/stat as label=its ten counters (absent if unreadable).
LOADAVG_LINE = re.compile(r"KVMTEST-LOADAVG ((\d+\.\d+) (\d+\.\d+) (\d+\.\d+) \d+/\d+ \d+) uptime=(\d+\.\d+)"
                          r"((?: cpu\d*=\d+(?:,\d+){9})*)")


def log(msg):
    print(f"make-test-dumps: {msg}", file=sys.stderr, flush=True)


def console_tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return "(no console output)"
    return "\n".join(data.splitlines()[-lines:])


def parse_loadavg_line(line):
    m = LOADAVG_LINE.fullmatch(line)
    if not m:
        return None
    stat = {}
    for field in m.group(6).split():
        label, counters = field.split("=")
        stat[label] = [int(x) for x in counters.split(",")]
    return {"line": line, "loadavg": m.group(1),
            "values": [float(m.group(2)), float(m.group(3)), float(m.group(4))],
            "uptimeSeconds": float(m.group(5)),
            "procStat": stat if "cpu" in stat else None}


def loadavg_at_stop(path):
    """The last two complete, well-formed KVMTEST-LOADAVG lines of the console log.

    Only text up to the last newline counts: the VM may have been stopped in the middle of
    a line.  Lines that the kernel's own console output interleaved with do not parse and
    are skipped.  Returns {"line", "loadavg", "values", "uptimeSeconds", "procStat", "previous"} or
    None; procStat maps "cpu", "cpu0", ... to the ten counters of that /proc/stat line (None if absent).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    data = data[:data.rfind(b"\n") + 1]  # drop a partial last line (all of it if there is no newline)
    found = []
    for raw in reversed(data.split(b"\n")):
        rec = parse_loadavg_line(raw.decode("utf-8", "replace").strip("\r\0 "))
        if rec:
            found.append(rec)
            if len(found) == 2:
                break
    if not found:
        return None
    last = found[0]
    last["previous"] = found[1] if len(found) > 1 else None
    return last


class Qmp:
    """A minimal QMP client: one command at a time, events kept aside."""

    def __init__(self, path, proc, timeout=20):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"cannot connect to QMP socket {path}")
                time.sleep(0.1)
        self.buf = b""
        self.events = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise RuntimeError(f"unexpected QMP greeting: {greeting}")
        self.cmd("qmp_capabilities")

    def _read(self, timeout=None):
        """Read one JSON message; raise TimeoutError if none arrives within `timeout` s."""
        deadline = None if timeout is None else time.time() + timeout
        while b"\n" not in self.buf:
            left = None if deadline is None else max(0.0, deadline - time.time())
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                raise TimeoutError
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, execute, **arguments):
        msg = {"execute": execute}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            resp = self._read()
            if "event" in resp:
                self.events.append(resp)
                continue
            if "error" in resp:
                raise RuntimeError(f"QMP {execute} failed: {resp['error']}")
            return resp.get("return")

    def wait_event(self, name, timeout):
        """Wait for an event, polling query-dump too in case the event was missed."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for i, ev in enumerate(self.events):
                if ev["event"] == name:
                    return self.events.pop(i)
            try:
                resp = self._read(timeout=2.0)
            except TimeoutError:
                status = self.cmd("query-dump")
                if status and status.get("status") in ("completed", "failed"):
                    return {"event": name, "data": {"result": status}}
                continue
            if "event" in resp:
                self.events.append(resp)
        raise RuntimeError(f"timed out waiting for QMP event {name}")


def dump_name(fmt):
    # QEMU's kdump-zlib/lzo/snappy are flattened streams; kdump-raw-* (QEMU >= 8.2) are not.
    if fmt == "elf":
        return "qemu.elf"
    if fmt.startswith("kdump-raw-"):
        return f"qemu-{fmt}.kdump"
    return f"qemu-{fmt}.flat"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--console", required=True)
    ap.add_argument("--qmp", required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--result", required=True)
    ap.add_argument("--qemu-log", default=os.devnull)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("qemu", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    qemu = a.qemu[1:] if a.qemu and a.qemu[0] == "--" else a.qemu
    if not qemu:
        ap.error("missing QEMU command line")

    for p in (a.qmp, a.console):
        if os.path.exists(p):
            os.unlink(p)
    qlog = open(a.qemu_log, "wb")
    proc = subprocess.Popen(qemu, stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.STDOUT)
    try:
        qmp = Qmp(a.qmp, proc)
        start = time.time()
        last_note = start
        while True:
            text = ""
            if os.path.exists(a.console):
                with open(a.console, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            if READY in text:
                break
            if FAILED in text or "Kernel panic" in text:
                raise RuntimeError("the guest reported a failure; console tail:\n" + console_tail(a.console))
            if proc.poll() is not None:
                raise RuntimeError(f"QEMU exited early (status {proc.returncode}); console tail:\n"
                                   + console_tail(a.console) + "\nQEMU log:\n" + console_tail(a.qemu_log, 20))
            now = time.time()
            if now - start > a.timeout:
                raise RuntimeError(f"the guest was not ready after {a.timeout:.0f} s; console tail:\n"
                                   + console_tail(a.console))
            if now - last_note > 30:
                log(f"  ... guest still booting/working ({now - start:.0f} s)")
                last_note = now
            time.sleep(0.2)
        log(f"  guest ready after {time.time() - start:.0f} s; stopping it and dumping")

        qmp.cmd("stop")
        # The VM is stopped: what the console holds now is all the guest printed.
        at_stop = loadavg_at_stop(a.console)
        if at_stop:
            prev = at_stop["previous"]
            log(f"  load average at stop: {at_stop['loadavg']} (uptime {at_stop['uptimeSeconds']} s)"
                + (f"; line before: {prev['loadavg']} (uptime {prev['uptimeSeconds']} s)" if prev else ""))
        else:
            log("  WARNING: no KVMTEST-LOADAVG line on the console when the VM was stopped")
        cap = qmp.cmd("query-dump-guest-memory-capability")
        formats = [f for f in cap.get("formats", [])]
        wanted = [f for f in formats if f == "elf" or f.startswith("kdump-")]
        dumps = []
        for fmt in wanted:
            path = os.path.abspath(os.path.join(a.outdir, dump_name(fmt)))
            if os.path.exists(path):
                os.unlink(path)
            t0 = time.time()
            qmp.events.clear()  # forget any stale DUMP_COMPLETED
            # Synchronous (detach=false) on purpose: QEMU 7.2 sends DUMP_COMPLETED before it
            # closes the dump's fd, so a detached dump started right after that event can
            # have its new fd closed under it ("dump: failed to sync cache for page_desc").
            # Without detach the command returns only after that cleanup.
            qmp.cmd("dump-guest-memory", paging=False, protocol="file:" + path, format=fmt, detach=False)
            ev = qmp.wait_event("DUMP_COMPLETED", timeout=900)
            data = ev.get("data", {})
            if data.get("error") or data.get("result", {}).get("status") == "failed":
                raise RuntimeError(f"dump-guest-memory {fmt} failed: {data}")
            os.chmod(path, 0o644)  # QEMU creates it 0400
            log(f"  dump-guest-memory {fmt} -> {os.path.basename(path)} ({time.time() - t0:.1f} s)")
            dumps.append({"format": fmt, "file": os.path.basename(path)})
        try:
            qmp.cmd("quit")
        except RuntimeError:
            pass  # QEMU may close the socket before answering
        proc.wait(timeout=60)
        with open(a.result, "w") as f:
            json.dump({"dumpCapability": formats, "dumps": dumps, "loadavgAtStop": at_stop}, f, indent=1)
    except Exception as e:  # report clearly, never leave QEMU behind
        log(f"ERROR: {e}")
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
