#!/usr/bin/python3
"""Runs every test tegami has and ends with one line: N passed, N failed.

  unit tests        build/unit-tests-san (ASan+UBSan)
  fuzz smoke runs   build/fuzz/fuzz_* for FUZZ_SECONDS each (default 5)
  integration, e2e  pytest tests/integration tests/e2e (real binary, real clients)

Arguments are passed on to pytest (e.g. -k smtp).
"""
import glob
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(ROOT)
passed = failed = skipped = 0


def section(name):
    print(f"\n=== {name}", flush=True)


section("unit tests")
r = subprocess.run(["build/unit-tests-san"], capture_output=True, text=True)
sys.stdout.write(r.stdout)
sys.stderr.write(r.stderr[-20000:])
m = re.search(r"^unit: (\d+) passed, (\d+) failed$", r.stdout, re.M)
if m:
    passed += int(m.group(1))
    failed += int(m.group(2))
if r.returncode != 0 and (not m or int(m.group(2)) == 0):
    print(f"unit runner exited {r.returncode}")
    failed += 1

section("fuzz smoke runs")
secs = os.environ.get("FUZZ_SECONDS", "5")
for f in sorted(glob.glob("build/fuzz/fuzz_*")):
    if not os.access(f, os.X_OK) or os.path.isdir(f):
        continue
    name = os.path.basename(f)
    corpus = f"build/fuzz/corpus-{name}"
    os.makedirs(corpus, exist_ok=True)
    args = [f, f"-max_total_time={secs}", "-rss_limit_mb=2048", "-timeout=10", corpus]
    seeds = f"fuzz/seeds/{name[len('fuzz_'):]}"
    if os.path.isdir(seeds):
        args.append(seeds)
    r = subprocess.run(args, capture_output=True, text=True)
    ok = r.returncode == 0
    print(f"{'ok  ' if ok else 'FAIL'} {name} ({secs}s)")
    if not ok:
        sys.stdout.write(r.stderr[-6000:])
        failed += 1
    else:
        passed += 1

section("integration and e2e tests (pytest)")
xml = "build/pytest.xml"
dirs = [d for d in ("tests/integration", "tests/e2e") if glob.glob(f"{d}/test_*.py")]
if dirs:
    r = subprocess.run(["/usr/bin/python3", "-m", "pytest", "-p", "no:cacheprovider",
                        "-q", "-rfE", f"--junitxml={xml}"] + dirs + sys.argv[1:])
    try:
        suites = ET.parse(xml).getroot()
        for s in suites.iter("testsuite"):
            t = int(s.get("tests", 0))
            f = int(s.get("failures", 0)) + int(s.get("errors", 0))
            sk = int(s.get("skipped", 0))
            passed += t - f - sk
            failed += f
            skipped += sk
    except (OSError, ET.ParseError):
        print(f"pytest exited {r.returncode} without a report")
        failed += 1

print()
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(0 if failed == 0 else 1)
