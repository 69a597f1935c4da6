"""Port profiles on the wire (issue 3), part 3: the transmit policer (Limit + AllocationUnits,
TransmitBurstSize), the receive policer (ReceiveBandwidthLimit, default burst) and the storm
limits (packets/s, burst = 100 ms worth). Topology vswt-pf-bw.xml:

  vswt-pb-txp   -> vswt-pb-sink    VLAN 75, transmit policer 2 Mbit/s, burst 20000 bytes
  vswt-pb-rxsrc -> vswt-pb-rxp     VLAN 79, receive policer 3 Mbit/s, default burst 3750 bytes
  vswt-pb-stm   -> vswt-pb-ssink   VLAN 78, storm limits broadcast 40, multicast 20, unknown unicast 30 /s

A paced Python sender in the namespace offers about twice the limit for 5 s; the receiving
namespace counts what arrives (bytes as on the wire, without FCS: what the policers charge)."""

import concurrent.futures
import time

import pytest

import checks
from harness import frame, new_token

TXP, SINK, RXSRC, RXP, STM, SSINK = ("vswt-pb-txp", "vswt-pb-sink", "vswt-pb-rxsrc", "vswt-pb-rxp",
                                     "vswt-pb-stm", "vswt-pb-ssink")
ALL = [TXP, SINK, RXSRC, RXP, STM, SSINK]
SIZE = 1000                                  # bytes per frame
TX_RATE, TX_BURST = 2_000_000, 20_000        # vswt-pf-txpol
RX_RATE, RX_BURST = 3_000_000, 3_750         # vswt-pf-rxpol: max(2 x (1500+18), 10 ms of 3 Mbit/s)
STORM = {"broadcast": 40, "multicast": 20, "unknown": 30}
STORM_DST = {"broadcast": "ff:ff:ff:ff:ff:ff", "multicast": "01:00:5e:00:00:01", "unknown": "02:77:78:00:00:ee"}
DURATION = 5.0


@pytest.fixture(scope="module")
def d(vswitch_shared):
    return vswitch_shared("vswt-pf-bw.xml")


def burst_slack(rate_bits, seconds):
    """Frames the bucket refills while a back-to-back burst is being sent (plus 10 ms of scheduling
    slack for the switch on a busy machine), rounded up."""
    return int((seconds + 0.010) * rate_bits / 8 / SIZE) + 1


def test_policer_bursts(d):
    """After idling, back-to-back frames pass up to the bucket depth (plus what refills meanwhile)."""
    time.sleep(1.0)  # buckets full
    tok = new_token()
    before = d.stats()
    with d.capture(SINK, RXP, summary=tok) as cap:
        stx = d.pace(TXP, [frame(d.vs(TXP).mac, token=tok, size=SIZE)], 1e6, 40)
        srx = d.pace(RXSRC, [frame(d.vs(RXSRC).mac, token=tok, size=SIZE)], 1e6, 20)
    after = d.stats()
    tx_n, _ = cap.counted(SINK)
    rx_n, _ = cap.counted(RXP)
    text = checks.counters_text(after, ALL)
    tx_max = TX_BURST // SIZE + burst_slack(TX_RATE, stx["duration"])
    rx_max = RX_BURST // SIZE + burst_slack(RX_RATE, srx["duration"])
    assert TX_BURST // SIZE <= tx_n <= tx_max, (
        "transmit burst 20000 B: %d of 40 back-to-back 1000-byte frames (sent in %.1f ms) arrived; expected 20..%d\n%s"
        % (tx_n, stx["duration"] * 1e3, tx_max, text))
    assert RX_BURST // SIZE <= rx_n <= rx_max, (
        "receive burst (default 3750 B): %d of 20 back-to-back 1000-byte frames (sent in %.1f ms) arrived; expected 3..%d\n%s"
        % (rx_n, srx["duration"] * 1e3, rx_max, text))
    assert checks.drop_delta(before, after, TXP, "policer") == 40 - tx_n, text
    assert checks.drop_delta(before, after, RXP, "policer") == 20 - rx_n, text
    assert checks.total_drops(after, RXSRC) == checks.total_drops(before, RXSRC), "receive-policer drops belong to the egress port"


def test_policers_hold_their_rate(d):
    """Both policers at once (different ports), each offered ~2x its rate for 5 s: within ±10%."""
    time.sleep(0.5)
    tok = new_token()
    tx_fps, rx_fps = 2 * TX_RATE / 8 / SIZE, 2 * RX_RATE / 8 / SIZE
    before = d.stats()
    with d.capture(SINK, RXP, summary=tok) as cap:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            ftx = pool.submit(d.pace, TXP, [frame(d.vs(TXP).mac, token=tok, size=SIZE)], tx_fps, int(tx_fps * DURATION))
            frx = pool.submit(d.pace, RXSRC, [frame(d.vs(RXSRC).mac, token=tok, size=SIZE)], rx_fps, int(rx_fps * DURATION))
            stx, srx = ftx.result(), frx.result()
    after = d.stats()
    text = checks.counters_text(after, ALL)
    for name, sent, port, recv_port, rate, burst in (("transmit", stx, TXP, SINK, TX_RATE, TX_BURST),
                                                     ("receive", srx, RXP, RXP, RX_RATE, RX_BURST)):
        n, nbytes = cap.counted(recv_port)
        offered = sent["bytes"] * 8 / sent["duration"]
        measured = (nbytes - burst) * 8 / sent["duration"]
        assert offered > 1.5 * rate, "%s: the sender only offered %.2f Mbit/s (limit %.1f)" % (name, offered / 1e6, rate / 1e6)
        assert abs(measured - rate) <= 0.10 * rate, (
            "%s policer: %d frames / %d bytes arrived in %.2f s = %.3f Mbit/s after the burst; limit %.1f Mbit/s ±10%% "
            "(offered %.2f Mbit/s, %d frames)\n%s" % (name, n, nbytes, sent["duration"], measured / 1e6, rate / 1e6,
                                                     offered / 1e6, sent["sent"], text))
        assert checks.drop_delta(before, after, port, "policer") == sent["sent"] - n, (
            "%s policer: sent %d, %d arrived, but the policer counter grew by %d\n%s"
            % (name, sent["sent"], n, checks.drop_delta(before, after, port, "policer"), text))


def storm_frames(d, tok, per_cycle):
    mac = d.vs(STM).mac
    out = []
    for kind, n in per_cycle.items():
        out += [(kind, frame(mac, dst=STORM_DST[kind], token=tok))] * n
    return out


def test_storm_bursts(d):
    time.sleep(0.5)  # 100 ms buckets refilled
    tok = new_token()
    before = d.stats()
    with d.capture(SSINK, summary=tok) as cap:
        sent = d.pace(STM, [f for _, f in storm_frames(d, tok, {"broadcast": 10, "multicast": 10, "unknown": 10})], 1e6, 30)
    after = d.stats()
    text = checks.counters_text(after, ALL)
    total = 0
    for kind, pps in STORM.items():
        n, _ = cap.counted(SSINK, STORM_DST[kind])
        total += n
        most = pps // 10 + int((sent["duration"] + 0.010) * pps) + 1
        assert pps // 10 <= n <= most, "%s storm limit %d/s: %d of 10 back-to-back frames (sent in %.1f ms) arrived; expected %d..%d\n%s" % (
            kind, pps, n, sent["duration"] * 1e3, pps // 10, most, text)
    assert checks.drop_delta(before, after, STM, "storm") == 30 - total, text
    assert checks.total_drops(after, STM) - checks.total_drops(before, STM) == 30 - total, text


def test_storm_limits_hold_their_rate(d):
    time.sleep(0.5)
    tok = new_token()
    duration = 3.0
    # One cycle of 9 frames offers each class at twice its limit: 4 broadcast, 2 multicast, 3 unknown unicast.
    cycle = [f for _, f in storm_frames(d, tok, {"broadcast": 4, "multicast": 2, "unknown": 3})]
    # Interleave the classes so that each one is offered evenly over time.
    order = [0, 6, 4, 1, 7, 2, 5, 8, 3]
    cycle = [cycle[i] for i in order]
    fps = 2 * sum(STORM.values())
    before = d.stats()
    with d.capture(SSINK, summary=tok) as cap:
        sent = d.pace(STM, cycle, fps, int(fps * duration))
    after = d.stats()
    text = checks.counters_text(after, ALL)
    total = 0
    for kind, pps in STORM.items():
        n, _ = cap.counted(SSINK, STORM_DST[kind])
        total += n
        measured = (n - pps // 10) / sent["duration"]
        assert abs(measured - pps) <= 0.10 * pps, (
            "%s storm limit %d/s: %d frames arrived in %.2f s = %.1f/s after the burst (offered %.0f/s)\n%s"
            % (kind, pps, n, sent["duration"], measured, 2 * pps, text))
    assert checks.drop_delta(before, after, STM, "storm") == sent["sent"] - total, text
