"""Queue limits per token: a server with several tokens counts each token's runs apart, so a client over its own
limit gets 429 saying so while the others run. On the session's cluster, through a second ingress with two tokens
in front of the same engine replicas (tests/serve_ingress.py)."""

from __future__ import annotations

import json
import time

import pytest
from serve_http import call, error_of, open_run
from serve_ingress import ALICE, BOB

from studio.cli import main
from studio.engine.request import GenerationRequest
from studio.serve import wire
from studio.serve.security import ClientTokens, read_tokens_file

TOY = GenerationRequest(prompt="red circle", model="toy", steps=3, width=24, height=16, seed=5)


def test_a_token_over_its_own_limit_gets_429_and_other_tokens_run(second_ingress):
    url = second_ingress.url
    assert json.loads(call(url, "/v1/health", token=ALICE)[1])["queue_limit"] == 1
    assert json.loads(call(url, "/v1/health", token=BOB)[1])["queue_limit"] == 4
    assert call(url, "/v1/health", token="t0ken")[0] == 401  # the other app's token is not one of these
    long_run = wire.run_payload(TOY.with_changes(steps=1000, seed=1))
    with open_run(url, long_run, token=ALICE) as alices:  # alice's one run, running
        assert json.loads(alices.readline())["type"] == "started"
        status, message, _ = error_of(call(url, "/v1/runs", wire.run_payload(TOY), token=ALICE))
        assert status == 429 and "this token already has 1 runs queued or running" in message
        with open_run(url, wire.run_payload(TOY), token=BOB) as bobs:  # bob is not held up by alice's limit
            events = [json.loads(line) for line in bobs]
        assert events[-1]["type"] == "result"
    deadline = time.monotonic() + 30  # alice's stream closed: her run is cancelled, her queue empties
    while (answer := call(url, "/v1/runs", wire.run_payload(TOY), token=ALICE))[0] == 429:
        assert time.monotonic() < deadline, "alice's queue did not empty after her stream closed"
        time.sleep(0.1)
    assert answer[0] == 200 and json.loads(answer[1].splitlines()[-1])["type"] == "result"


def test_each_token_is_a_client_and_a_wrong_one_is_none():
    tokens = ClientTokens(((ALICE, 1), (BOB, 0)), default_limit=4)
    alice, bob = tokens.identify(f"Bearer {ALICE}", "10.0.0.1"), tokens.identify(f"Bearer {BOB}", "10.0.0.1")
    assert (alice.key, alice.limit, bob.key, bob.limit) == ("token 1", 1, "token 2", 4)
    assert ALICE not in alice.key  # the queue's name never holds the token (it may be logged)
    assert tokens.identify("Bearer carol", "10.0.0.1") is None and tokens.identify(None, "10.0.0.1") is None
    assert tokens.identify(ALICE, "10.0.0.1") is None  # not a Bearer header
    anyone = ClientTokens(()).identify(None, "10.0.0.1")  # a loopback server without tokens: by address
    assert (anyone.key, anyone.by_token) == ("10.0.0.1", False)


def test_the_tokens_file(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"# the studio's clients\n{ALICE} 1   # alice's laptop\n\n{BOB}\n")
    assert read_tokens_file(path) == ((ALICE, 1), (BOB, 0))
    for text, problem in ((f"{ALICE} none", "line 1: the queue limit 'none'"), (f"{ALICE} 0", "from 1"),
                          (f"{ALICE} 1 2", "TOKEN [LIMIT]"), (f"{ALICE}\n{ALICE} 2", "line 2: this token is given"),
                          ("# nothing\n", "holds no token")):
        path.write_text(text)
        with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
            read_tokens_file(path)


def test_serve_refuses_a_bad_tokens_file_or_a_token_given_twice(tmp_path, capsys):
    path = tmp_path / "tokens"
    path.write_text(f"{ALICE} lots\n")
    assert main(["serve", "--tokens-file", str(path)]) == 2
    assert "line 1: the queue limit 'lots'" in capsys.readouterr().err
    path.write_text(f"{ALICE}\n")
    assert main(["serve", "--token", ALICE, "--tokens-file", str(path)]) == 2
    assert "given twice" in capsys.readouterr().err
    assert main(["serve", "--host", "0.0.0.0", "--queue-limit", "0", "--token", BOB]) == 2
    assert "--queue-limit 0" in capsys.readouterr().err
