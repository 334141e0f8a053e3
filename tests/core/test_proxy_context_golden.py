"""Golden tables for the proxy context: (now, input) -> (actions, state, next
deadline), exact numbers. No event loop and no sleeps: time is whatever `now` says,
and `handle_timers` is called exactly at each deadline the context announces."""

from __future__ import annotations

from proxy_helpers import Recorder

from sipline.core.proxy import ProxyContext, SendResponse

ANSWERED = 'SIP;cause=200;text="Call completed elsewhere"'


def invite(*groups: list[str], timer_c_s: float = 180.0) -> ProxyContext[str]:
    return ProxyContext(invite=True, timer_c_s=timer_c_s, groups=groups)


def test_timer_c_fires_at_exactly_t_and_a_provisional_pushes_it_back() -> None:
    """§16.6 step 11, §16.7 step 2: Timer C per INVITE branch; a branch that rang
    (180) is CANCELled when it fires, a silent one is given up with 408."""
    ctx = invite(["a", "b"])
    rec = Recorder(ctx)
    rec.at(0.0, "start", lambda: ctx.start(now=0.0))
    rec.recv(1.0, 0, 180)
    rec.recv(2.0, 0, 100)
    rec.timers_until(1000.0)
    rec.recv(181.5, 0, 487)
    assert rec.rows == [
        (0.0, "start", ["Fork 0 a", "Fork 1 b"], "PROCEEDING", 180.0),
        (1.0, "180 from 0", ["Relay 180"], "PROCEEDING", 180.0),  # b's Timer C is first
        (2.0, "100 from 0", [], "PROCEEDING", 180.0),  # only >100 pushes Timer C back
        (180.0, "timers", ["GiveUp 1 408"], "PROCEEDING", 181.0),
        (181.0, "timers", ["Cancel 0"], "PROCEEDING", None),
        (181.5, "487 from 0", ["Relay 408"], "COMPLETED", None),  # 408 beats 487
    ]


def test_every_provisional_pushes_timer_c_back() -> None:
    ctx = invite(["a"])
    rec = Recorder(ctx)
    rec.at(0.0, "start", lambda: ctx.start(now=0.0))
    rec.recv(100.0, 0, 180)
    rec.recv(250.0, 0, 183)
    rec.timers_until(1000.0)
    rec.recv(430.2, 0, 487)
    assert rec.rows == [
        (0.0, "start", ["Fork 0 a"], "PROCEEDING", 180.0),
        (100.0, "180 from 0", ["Relay 180"], "PROCEEDING", 280.0),
        (250.0, "183 from 0", ["Relay 183"], "PROCEEDING", 430.0),
        (430.0, "timers", ["Cancel 0"], "PROCEEDING", None),
        (430.2, "487 from 0", ["Relay 487"], "COMPLETED", None),
    ]


def test_a_6xx_beats_486_and_cancels_the_others() -> None:
    """§16.7 step 5-6: a 6xx ends the search; the other branches are CANCELled with
    its cause (RFC 3326), and it is the answer even though a 486 came first."""
    ctx = invite(["a", "b", "c"], ["d"])
    rec = Recorder(ctx)
    rec.at(0.0, "start", lambda: ctx.start(now=0.0))
    rec.recv(0.1, 2, 180)
    rec.recv(1.0, 0, 486)
    rec.recv(2.0, 1, 603)
    rec.recv(2.5, 2, 487)
    assert rec.rows == [
        (0.0, "start", ["Fork 0 a", "Fork 1 b", "Fork 2 c"], "PROCEEDING", 180.0),
        (0.1, "180 from 2", ["Relay 180"], "PROCEEDING", 180.0),
        (1.0, "486 from 0", [], "PROCEEDING", 180.0),
        (2.0, "603 from 1", ["Cancel 2 SIP;cause=603"], "PROCEEDING", 180.1),
        (2.5, "487 from 2", ["Relay 603"], "COMPLETED", None),  # no q-group "d" after a 6xx
    ]


def test_401_and_407_are_sent_as_one_response_with_every_challenge() -> None:
    """§16.7 step 7: the chosen 401 carries the WWW- and Proxy-Authenticate of both."""
    ctx = invite(["a", "b"])
    rec = Recorder(ctx)
    rec.at(0.0, "start", lambda: ctx.start(now=0.0))
    rec.recv(1.0, 0, 401, [("WWW-Authenticate", 'Digest realm="a", nonce="1"')])
    rec.recv(2.0, 1, 407, [("Proxy-Authenticate", 'Digest realm="b", nonce="2"')])
    assert [row[2] for row in rec.rows] == [["Fork 0 a", "Fork 1 b"], [], ["Send 401"]]
    sent = rec.actions[-1]
    assert isinstance(sent, SendResponse)
    headers = sent.response.headers
    assert headers.get_all("www-authenticate") == ['Digest realm="a", nonce="1"']
    assert headers.get_all("proxy-authenticate") == ['Digest realm="b", nonce="2"']
    assert len(headers.get_all("via")) == 1  # ours came off (§16.7 step 3)


def test_q_groups_are_tried_in_turn() -> None:
    """§16.6: the next q-group only once every branch of the one before failed."""
    ctx = invite(["a", "b"], ["c"], ["d"])
    rec = Recorder(ctx)
    rec.at(0.0, "start", lambda: ctx.start(now=0.0))
    rec.recv(1.0, 0, 486)
    rec.recv(2.0, 1, 480)
    rec.recv(3.0, 2, 404)
    rec.recv(4.0, 3, 180)
    rec.recv(5.0, 3, 200)
    rec.recv(5.5, 3, 200)  # a retransmission of the 2xx: still relayed (§16.7 step 10)
    assert rec.rows == [
        (0.0, "start", ["Fork 0 a", "Fork 1 b"], "PROCEEDING", 180.0),
        (1.0, "486 from 0", [], "PROCEEDING", 180.0),
        (2.0, "480 from 1", ["Fork 2 c"], "PROCEEDING", 182.0),
        (3.0, "404 from 2", ["Fork 3 d"], "PROCEEDING", 183.0),
        (4.0, "180 from 3", ["Relay 180"], "PROCEEDING", 184.0),
        (5.0, "200 from 3", ["Relay 200"], "COMPLETED", None),
        (5.5, "200 from 3", ["Relay 200 stateless"], "COMPLETED", None),
    ]


def test_a_2xx_cancels_the_other_branches_and_every_2xx_goes_upstream() -> None:
    ctx = invite(["a", "b", "c"])
    rec = Recorder(ctx)
    rec.at(0.0, "start", lambda: ctx.start(now=0.0))
    rec.recv(1.0, 1, 200)
    rec.recv(1.1, 2, 200)  # a second answer (§16.7 step 10): relayed too
    rec.recv(1.2, 0, 487)
    assert [row[2] for row in rec.rows] == [
        ["Fork 0 a", "Fork 1 b", "Fork 2 c"],
        ["Relay 200", f"Cancel 0 {ANSWERED}", f"Cancel 2 {ANSWERED}"],
        # Each branch's first 2xx CANCELs those still pending (a CANCEL already sent
        # is not sent twice: the transaction layer keeps one per INVITE).
        ["Relay 200 stateless", f"Cancel 0 {ANSWERED}"],
        [],
    ]
    assert rec.rows[-1][3:] == ("COMPLETED", None)


def test_503_becomes_500_and_silence_becomes_408() -> None:
    """§16.7 step 6: a 503 is not passed on (the caller would try elsewhere)."""
    ctx = invite(["a"])
    rec = Recorder(ctx)
    rec.at(0.0, "start", lambda: ctx.start(now=0.0))
    rec.recv(1.0, 0, 503)
    assert rec.rows[-1] == (1.0, "503 from 0", ["Respond 500"], "COMPLETED", None)
    empty = invite()
    rec = Recorder(empty)
    rec.at(0.0, "start", lambda: empty.start(now=0.0))
    assert rec.rows == [(0.0, "start", ["Respond 408"], "COMPLETED", None)]


def test_cancel_from_the_caller() -> None:
    """§16.10: every pending branch is CANCELled; no new q-group starts; the 487s
    become the answer."""
    ctx = invite(["a", "b"], ["c"])
    rec = Recorder(ctx)
    rec.at(0.0, "start", lambda: ctx.start(now=0.0))
    rec.recv(0.5, 0, 180)
    rec.at(1.0, "CANCEL", lambda: ctx.cancel(now=1.0))
    rec.recv(1.1, 0, 487)
    rec.recv(1.2, 1, 487)
    assert rec.rows == [
        (0.0, "start", ["Fork 0 a", "Fork 1 b"], "PROCEEDING", 180.0),
        (0.5, "180 from 0", ["Relay 180"], "PROCEEDING", 180.0),
        (1.0, "CANCEL", ["Cancel 0", "Cancel 1"], "CANCELLING", 180.0),
        (1.1, "487 from 0", [], "CANCELLING", 180.0),
        (1.2, "487 from 1", ["Relay 487"], "COMPLETED", None),
    ]


def test_a_forked_non_invite_is_never_cancelled_and_has_no_timer_c() -> None:
    """§9.1: only an INVITE can be cancelled; the other branches run to their end."""
    ctx: ProxyContext[str] = ProxyContext(invite=False, timer_c_s=180.0, groups=[["a", "b"]])
    rec = Recorder(ctx, "MESSAGE")
    rec.at(0.0, "start", lambda: ctx.start(now=0.0))
    rec.recv(1.0, 0, 200)
    rec.at(2.0, "CANCEL", lambda: ctx.cancel(now=2.0))
    rec.recv(3.0, 1, 408)
    assert rec.rows == [
        (0.0, "start", ["Fork 0 a", "Fork 1 b"], "PROCEEDING", None),
        (1.0, "200 from 0", ["Relay 200"], "COMPLETED", None),
        (2.0, "CANCEL", [], "COMPLETED", None),
        (3.0, "408 from 1", [], "COMPLETED", None),
    ]


def test_a_routing_step_times_out_and_policy_is_asked_again() -> None:
    """A step's ring timeout: a branch that rang is CANCELled (its 487 ends it), a
    silent one is given up at once; the step ends NO_ANSWER (timed out)."""
    ctx: ProxyContext[str] = ProxyContext(invite=True, timer_c_s=180.0, stepped=True)
    rec = Recorder(ctx)
    rec.at(0.0, "fork", lambda: ctx.fork(["a", "b"], timeout_s=20.0, now=0.0))
    rec.recv(1.0, 0, 180)
    rec.timers_until(20.0)
    rec.recv(20.1, 0, 487)
    rec.at(20.2, "fork", lambda: ctx.fork(["c"], now=20.2))
    rec.recv(21.0, 2, 486)
    rec.at(21.1, "exhausted", lambda: ctx.exhausted(480, now=21.1))
    assert rec.rows == [
        (0.0, "fork", ["Fork 0 a", "Fork 1 b"], "PROCEEDING", 20.0),
        (1.0, "180 from 0", ["Relay 180"], "PROCEEDING", 20.0),
        (20.0, "timers", ["Cancel 0", "Cancel 1", "GiveUp 1 408"], "PROCEEDING", 181.0),
        (20.1, "487 from 0", ["StepEnded None timed out"], "WAITING", None),
        (20.2, "fork", ["Fork 2 c"], "PROCEEDING", 200.2),
        (21.0, "486 from 2", ["StepEnded 486"], "WAITING", None),
        (21.1, "exhausted", ["Relay 486"], "COMPLETED", None),  # the best so far
    ]


def test_a_silent_hop_is_given_up_and_its_late_answer_hung_up() -> None:
    """The hop timeout (Timer B cut short): a branch that heard nothing is abandoned;
    once the caller has its answer from the next step, that branch's late 2xx is
    ACKed and hung up, once, not relayed."""
    ctx: ProxyContext[str] = ProxyContext(invite=True, timer_c_s=180.0, stepped=True)
    rec = Recorder(ctx)
    rec.at(0.0, "fork", lambda: ctx.fork(["psap1"], hop_timeout_s=1.0, now=0.0))
    rec.timers_until(1.0)
    rec.at(1.1, "fork", lambda: ctx.fork(["psap2"], hop_timeout_s=1.0, now=1.1))
    rec.recv(1.2, 1, 100)  # heard: its hop timer stops
    rec.recv(5.0, 1, 200)
    rec.recv(6.0, 0, 200)
    rec.recv(6.5, 0, 200)
    assert rec.rows == [
        (0.0, "fork", ["Fork 0 psap1"], "PROCEEDING", 1.0),
        (1.0, "timers", ["Cancel 0", "GiveUp 0 408", "StepEnded None"], "WAITING", None),
        (1.1, "fork", ["Fork 1 psap2"], "PROCEEDING", 2.1),
        (1.2, "100 from 1", [], "PROCEEDING", 181.1),
        (5.0, "200 from 1", ["Relay 200"], "COMPLETED", None),
        (6.0, "200 from 0", ["HangUp 0 BYE"], "COMPLETED", None),
        (6.5, "200 from 0", ["HangUp 0"], "COMPLETED", None),  # ACKed again, one BYE
    ]


def test_a_late_answer_is_the_answer_when_nothing_else_answered() -> None:
    ctx: ProxyContext[str] = ProxyContext(invite=True, timer_c_s=180.0, stepped=True)
    rec = Recorder(ctx)
    rec.at(0.0, "fork", lambda: ctx.fork(["psap1"], hop_timeout_s=1.0, now=0.0))
    rec.timers_until(1.0)
    rec.at(1.1, "fork", lambda: ctx.fork(["psap2"], now=1.1))
    rec.recv(2.0, 1, 180)
    rec.recv(3.0, 0, 200)
    assert [row[2] for row in rec.rows[-2:]] == [
        ["Relay 180"],
        ["Relay 200", f"Cancel 1 {ANSWERED}"],
    ]


def test_cancel_while_the_next_step_is_looked_up_answers_at_once() -> None:
    ctx: ProxyContext[str] = ProxyContext(invite=True, timer_c_s=180.0, stepped=True)
    rec = Recorder(ctx)
    rec.at(0.0, "fork", lambda: ctx.fork(["a"], now=0.0))
    rec.recv(1.0, 0, 486)
    rec.at(2.0, "CANCEL", lambda: ctx.cancel(now=2.0))
    rec.at(3.0, "fork", lambda: ctx.fork(["b"], now=3.0))  # too late: refused
    assert rec.rows[1:] == [
        (1.0, "486 from 0", ["StepEnded 486"], "WAITING", None),
        (2.0, "CANCEL", ["Relay 486"], "COMPLETED", None),
        (3.0, "fork", [], "COMPLETED", None),
    ]


def test_policy_rejects_or_gives_its_own_answer() -> None:
    ctx: ProxyContext[str] = ProxyContext(invite=True, timer_c_s=180.0, stepped=True)
    rec = Recorder(ctx)
    rec.at(0.0, "reject", lambda: ctx.reject(603, "Decline", now=0.0))
    assert rec.rows == [(0.0, "reject", ["Respond 603"], "COMPLETED", None)]
    other: ProxyContext[str] = ProxyContext(invite=True, timer_c_s=180.0, stepped=True)
    rec = Recorder(other)
    rec.at(0.0, "exhausted", lambda: other.exhausted(480, "No answer", now=0.0))
    assert rec.rows == [(0.0, "exhausted", ["Respond 480"], "COMPLETED", None)]
