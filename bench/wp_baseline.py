"""Baseline for benchmark H: a plain loop of the WordPress REST calls syndicate makes to create N posts.

For each post: each tag looked up by name (``GET /wp-json/wp/v2/tags?search=…``, once per name, as
syndicate caches them for a run) and created if missing (``POST /tags``), then ``POST /posts`` with
title, content, excerpt, slug, status and tag ids. Basic auth with an Application Password, one
requests.Session. No retries, no read-back, no ledger: the floor a publisher could reach.

Input: a JSON file ``{"url", "username", "posts": [{"title", "html", "slug", "status", "tags"}]}``;
the password comes from the environment variable named by ``--password-env``.
Prints one JSON object: seconds (the loop only), calls, created.

Usage: python bench/wp_baseline.py POSTS.json --password-env NAME
"""

from __future__ import annotations

import argparse
import html
import json
import os
import sys
import time
from pathlib import Path

import requests


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("posts", type=Path)
    ap.add_argument("--password-env", required=True)
    args = ap.parse_args()
    spec = json.loads(args.posts.read_text())
    api = spec["url"].rstrip("/") + "/wp-json/wp/v2"
    session = requests.Session()
    session.auth = (spec["username"], os.environ[args.password_env])
    session.trust_env = False
    terms: dict[str, int] = {}
    calls = created = 0
    t0 = time.perf_counter()
    for post in spec["posts"]:
        ids = []
        for name in post.get("tags") or []:
            key = name.casefold()
            if key not in terms:
                r = session.get(f"{api}/tags", params={"search": name, "per_page": 100, "hide_empty": "false"},
                                timeout=30)
                calls += 1
                r.raise_for_status()
                found = [t["id"] for t in r.json() if html.unescape(t.get("name", "")).casefold() == key]
                if found:
                    terms[key] = found[0]
                else:
                    r = session.post(f"{api}/tags", json={"name": name}, timeout=30)
                    calls += 1
                    if r.status_code == 400 and r.json().get("code") == "term_exists":
                        terms[key] = int(r.json()["data"]["term_id"])
                    else:
                        r.raise_for_status()
                        terms[key] = int(r.json()["id"])
            ids.append(terms[key])
        r = session.post(f"{api}/posts", json={"title": post["title"], "content": post["html"],
                                               "excerpt": post.get("excerpt", ""), "slug": post["slug"],
                                               "status": post.get("status", "draft"), "tags": ids}, timeout=60)
        calls += 1
        r.raise_for_status()
        created += 1
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "calls": calls, "created": created}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
