"""Baseline for benchmark H: a plain loop of the WordPress REST calls syndicate makes to create N posts.

For each post: each tag looked up by name (``GET /wp-json/wp/v2/tags?search=…``, once per name, as
syndicate caches them for a run) and created if missing (``POST /tags``), then ``POST /posts`` with
title, content, excerpt, slug, status and tag ids. Basic auth with an Application Password, one
requests.Session. No retries, no read-back, no ledger: the floor a publisher could reach.

With ``--threads N`` (N > 1) the tags are resolved first, as above, then the posts are created by N threads
(one requests.Session each): the same calls at N at once, the most any client gets from this WordPress on
this machine (benchmark H4's ceiling; not a baseline judged against).

Input: a JSON file ``{"url", "username", "posts": [{"title", "html", "excerpt", "slug", "status", "tags"}]}``
(the bench writes the posts syndicate made, read back from WordPress);
the password comes from the environment variable named by ``--password-env``.
Prints one JSON object: seconds (the loop only), calls, created.

Usage: python bench/wp_baseline.py POSTS.json --password-env NAME [--threads N]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import html
import json
import os
import sys
import threading
import time
from pathlib import Path

import requests


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("posts", type=Path)
    ap.add_argument("--password-env", required=True)
    ap.add_argument("--threads", type=int, default=1, help="create the posts N at once (tags first)")
    args = ap.parse_args()
    spec = json.loads(args.posts.read_text())
    api = spec["url"].rstrip("/") + "/wp-json/wp/v2"
    auth = (spec["username"], os.environ[args.password_env])

    def new_session() -> requests.Session:
        session = requests.Session()
        session.auth = auth
        session.trust_env = False
        return session

    session = new_session()
    terms: dict[str, int] = {}
    calls = 0

    def tag_ids(post: dict[str, object]) -> list[int]:
        nonlocal calls
        ids = []
        for name in post.get("tags") or []:  # type: ignore[attr-defined]
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
        return ids

    def create(client: requests.Session, post: dict[str, object], ids: list[int]) -> None:
        r = client.post(f"{api}/posts", json={"title": post["title"], "content": post["html"],
                                              "excerpt": post.get("excerpt", ""), "slug": post["slug"],
                                              "status": post.get("status", "draft"), "tags": ids}, timeout=60)
        r.raise_for_status()

    t0 = time.perf_counter()
    if args.threads <= 1:
        for post in spec["posts"]:
            create(session, post, tag_ids(post))
    else:
        jobs = [(post, tag_ids(post)) for post in spec["posts"]]
        local = threading.local()

        def create_here(post: dict[str, object], ids: list[int]) -> None:
            if not hasattr(local, "session"):  # one session per thread: a Session is not shared safely
                local.session = new_session()
            create(local.session, post, ids)

        with concurrent.futures.ThreadPoolExecutor(args.threads) as pool:
            for done in [pool.submit(create_here, post, ids) for post, ids in jobs]:
                done.result()
    calls += len(spec["posts"])
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "calls": calls, "created": len(spec["posts"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
