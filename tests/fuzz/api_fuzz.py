"""Schemathesis against a running local mailferry (started by `cargo xtask fuzz`).

Signs in as the admin, seeds one project with two users (one invited, so a real invite token
exists), then runs schemathesis over /api/openapi.json with the session cookie, the seeded ids
bound to the path parameters, and the checks that matter here: no server error, and every
answer (status, content type, body) inside the documented schemas. Prints the figures and
writes them as JSON to $FUZZ_API_OUT. Exit status: schemathesis's.

Environment: BASE_URL, ADMIN_PASSWORD, ST (the schemathesis CLI), FUZZ_API_OUT, MAX_EXAMPLES,
SEED.
"""

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

BASE = os.environ["BASE_URL"]
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"

jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with opener.open(req, timeout=30) as resp:
        text = resp.read().decode()
        return json.loads(text) if text else None


def seed():
    call("POST", "/api/admin/login", {"password": os.environ["ADMIN_PASSWORD"]})
    cookie = next(c for c in jar if c.name == "mf_session")
    project = call("POST", "/api/admin/projects", {
        "name": "Fuzzed project",
        # Port 1 on loopback refuses at once: credential tests end quickly.
        "source": {"host": "127.0.0.1", "port": 1, "security": "plaintext",
                   "auth": {"mode": "per_user"}},
        "target": {"host": "127.0.0.1", "port": 1, "security": "plaintext",
                   "auth": {"mode": "admin", "login_pattern": "{email}", "password": "fuzz-target-pw"}},
        "invite_to": "source",
    })
    pid = project["id"]
    ann = call("POST", f"/api/admin/projects/{pid}/users",
               {"source_email": "ann@old.example", "target_email": "ann@new.example"})
    bob = call("POST", f"/api/admin/projects/{pid}/users",
               {"source_email": "bob@old.example", "target_email": "bob@new.example"})
    call("POST", f"/api/admin/projects/{pid}/users/{bob['id']}/actions/start")
    mails = call("GET", "/api/admin/outbox?limit=10")
    token = re.search(r"/migrate/([A-Za-z0-9_-]{43})", mails[0]["text"]).group(1)
    return cookie.value, pid, ann["id"], token


def main():
    cookie, pid, uid, token = seed()
    config = f"""
[parameters]
"path.id" = "{pid}"
"path.uid" = "{uid}"
"path.token" = "{token}"
"""
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(config)
        config_path = f.name
    report = tempfile.mktemp(suffix=".json")
    started = time.monotonic()
    run = subprocess.run([
        os.environ["ST"], "--config-file", config_path, "run", BASE + "/api/openapi.json",
        "-H", f"Cookie: mf_session={cookie}",
        # Signing out would end the run's session half-way.
        "--exclude-path", "/api/admin/logout",
        "-c", CHECKS,
        "-n", os.environ.get("MAX_EXAMPLES", "50"),
        "--seed", os.environ.get("SEED", "1"),
        "--request-timeout", "30",
        "--report-json-path", report,
    ], capture_output=True, text=True)
    seconds = time.monotonic() - started
    out = run.stdout + run.stderr
    print(out[-6000:])
    generated = re.search(r"(\d+) generated", out)
    failed = re.search(r"^Failures:\n((?:\s+❌.*\n)+)", out, re.M)
    failures = failed.group(1).strip().splitlines() if failed else []
    summary = {
        "operations_tested": int(m.group(1)) if (m := re.search(r"Tested:\s+(\d+)", out)) else None,
        "requests": int(generated.group(1)) if generated else None,
        "failures": [f.strip(" ❌") for f in failures],
        "exit_status": run.returncode,
        "seconds": round(seconds, 1),
        "checks": CHECKS.split(","),
    }
    print("schemathesis:", json.dumps(summary))
    out_path = os.environ.get("FUZZ_API_OUT")
    if out_path:
        with open(out_path, "w") as f:
            json.dump(summary, f, indent=2)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
