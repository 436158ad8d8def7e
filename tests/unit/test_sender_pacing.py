"""The outbound pacer on a simulated clock: Telegram's limits, fairness between chats, order, 429s."""

from __future__ import annotations

import heapq
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest

from bot.sender import Pacer, SendLimits, SlidingWindow, Ticket

Item = tuple[int | str, int]  # (chat_id, sequence number within the chat)


@dataclass
class Sent:
    chat_id: int | str
    item: Item
    start: float
    end: float
    arrival: float  # when "Telegram" saw it: somewhere between start and end


def simulate(
    pacer: Pacer[Item],
    pushes: Iterable[tuple[float, int | str]],
    *,
    latency: Callable[[random.Random], float] = lambda rng: 0.0,
    outcome: Callable[[Pacer[Item], Ticket[Item], float], bool] | None = None,
    seed: int = 1,
    until: float = 10_000.0,
) -> list[Sent]:
    """Run the pacer against a fake API: ``pushes`` are (time, chat_id); each request takes ``latency``.

    ``outcome(pacer, ticket, now)`` may give the ticket back itself (returning True); otherwise it is done.
    """
    rng = random.Random(seed)
    counters: Counter[int | str] = Counter()
    queued: list[tuple[float, int, int | str, Item]] = []
    for order, (at, chat_id) in enumerate(pushes):
        counters[chat_id] += 1
        queued.append((at, order, chat_id, (chat_id, counters[chat_id])))
    queued.sort(reverse=True)  # popped from the end: earliest first
    flying: list[tuple[float, int, Ticket[Item], float, float]] = []  # (end, order, ticket, start, arrival)
    sent: list[Sent] = []
    order = 0
    now = 0.0
    while now <= until:
        while queued and queued[-1][0] <= now:
            _, _, chat_id, item = queued.pop()
            pacer.push(chat_id, item, now)
        while flying and flying[0][0] <= now:
            _, _, back, start, arrival = heapq.heappop(flying)
            if not (outcome is not None and outcome(pacer, back, now)):
                pacer.done(back, now)
            sent.append(Sent(back.chat_id, back.item, start, now, arrival))
        ticket, wake = pacer.poll(now)
        if ticket is not None:
            duration = latency(rng)
            order += 1
            heapq.heappush(flying, (now + duration, order, ticket, now, now + rng.random() * duration))
            continue
        upcoming = [
            t
            for t in (wake, queued[-1][0] if queued else None, flying[0][0] if flying else None)
            if t is not None
        ]
        if not upcoming:
            break
        now = max(now, min(upcoming))
    return sent


def max_in_window(times: Iterable[float], window: float) -> int:
    """Most events within any window (two events exactly ``window`` apart are not counted together)."""
    ordered = sorted(times)
    best = start = 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def by_chat(sent: list[Sent]) -> dict[int | str, list[Sent]]:
    chats: dict[int | str, list[Sent]] = defaultdict(list)
    for s in sent:
        chats[s.chat_id].append(s)
    return chats


# ------------------------------------------------------------------------------------------ the limits


def test_a_burst_to_many_chats_never_exceeds_the_bot_limit_whatever_the_latency() -> None:
    rng = random.Random(7)
    chats = list(range(1, 281)) + [-(10**12) - i for i in range(20)]
    pushes = [(0.0, rng.choice(chats)) for _ in range(1000)]
    sent = simulate(Pacer(SendLimits()), pushes, latency=lambda r: r.uniform(0.005, 0.25))

    assert len(sent) == 1000
    assert sorted(s.item for s in sent) == sorted({s.item for s in sent})  # each once
    assert max_in_window((s.arrival for s in sent), 1.0) <= 30
    for chat_id, messages in by_chat(sent).items():
        arrivals = [s.arrival for s in messages]
        assert max_in_window(arrivals, 1.0) <= 3, chat_id  # the burst
        assert max_in_window(arrivals, 5.0) <= 3 + 4, chat_id  # then one a second
        if isinstance(chat_id, int) and chat_id < 0:
            assert max_in_window(arrivals, 60.0) <= 20
    duration = max(s.end for s in sent)
    assert 1000 / 30 - 1 <= duration <= 1000 / 30 * 1.3  # close to 30/s, latency costs a little


def test_arrivals_anywhere_in_flight_still_respect_the_bot_window() -> None:
    """Even when in-flight requests reach the server in a different order than they were started."""
    pacer: Pacer[Item] = Pacer(SendLimits(per_bot=5, window=1.0, chat_burst=1))
    sent = simulate(pacer, [(0.0, chat) for chat in range(1, 101)], latency=lambda r: r.expovariate(5))
    assert len(sent) == 100
    assert max_in_window((s.arrival for s in sent), 1.0) <= 5


def test_one_chat_gets_its_burst_then_one_message_a_second() -> None:
    sent = simulate(Pacer(SendLimits()), [(0.0, 42)] * 8)
    assert [s.start for s in sent] == [0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert [s.item for s in sent] == [(42, n) for n in range(1, 9)]


def test_a_chat_that_was_quiet_gets_its_burst_back() -> None:
    pushes = [(0.0, 42)] * 4 + [(20.0, 42)] * 3
    sent = simulate(Pacer(SendLimits()), pushes)
    assert [s.start for s in sent] == [0.0, 0.0, 0.0, 1.0, 20.0, 20.0, 20.0]


def test_a_group_gets_at_most_twenty_messages_a_minute() -> None:
    group = -1001234567890
    sent = simulate(Pacer(SendLimits()), [(0.0, group)] * 45, latency=lambda r: 0.05)
    starts = [s.start for s in sent]
    assert len(sent) == 45
    assert max_in_window(starts, 60.0) == 20
    assert max_in_window(starts, 1.0) <= 3
    assert starts[20] >= sent[0].end + 60.0
    assert starts[40] >= sent[20].end + 60.0


def test_channels_named_by_username_count_as_groups() -> None:
    sent = simulate(Pacer(SendLimits(chat_interval=0.01)), [(0.0, "@news")] * 25)
    assert max_in_window((s.start for s in sent), 60.0) == 20
    assert sent[20].start >= 60.0


def test_scaled_limits_run_the_same_schedule_faster() -> None:
    limits = SendLimits().scaled(0.1)
    assert (limits.per_bot, limits.chat_burst, limits.per_group) == (30, 3, 20)
    assert limits.window == pytest.approx(0.1) and limits.group_window == pytest.approx(6.0)
    sent = simulate(Pacer(limits), [(0.0, 42)] * 5)
    assert [s.start for s in sent] == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2])


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        SendLimits(per_bot=0)
    with pytest.raises(ValueError):
        SendLimits(chat_interval=0)


def test_sliding_window_counts_requests_until_a_period_after_they_finished() -> None:
    window = SlidingWindow(2, 1.0)
    assert window.next_allowed(0.0) == 0.0
    window.begin()
    window.begin()
    assert window.next_allowed(0.0) is None  # both in flight: wait for one to finish
    window.end(0.3)
    assert window.next_allowed(0.5) == pytest.approx(1.3)
    window.end(0.4)
    assert window.next_allowed(1.3) == 1.3  # the first one has left the window
    assert window.recent(1.35) == 1
    assert window.recent(1.4) == 0


# ------------------------------------------------------------------------------------------ fairness, order


def test_a_busy_chat_does_not_hold_up_other_chats() -> None:
    pushes = [(0.0, 1)] * 200 + [(5.0, 2), (5.0, 3), (30.0, 4)]
    sent = simulate(Pacer(SendLimits()), pushes, latency=lambda r: 0.02)
    first = {chat_id: messages[0].start for chat_id, messages in by_chat(sent).items()}
    assert first[2] == 5.0 and first[3] == 5.0 and first[4] == 30.0
    assert [s.item for s in by_chat(sent)[1]] == [(1, n) for n in range(1, 201)]


def test_chats_waiting_together_take_turns() -> None:
    pushes = [(0.0, chat) for chat in (1, 2, 3) for _ in range(4)]
    sent = simulate(Pacer(SendLimits(chat_burst=1)), pushes)
    assert [s.chat_id for s in sent] == [1, 2, 3] * 4


def test_the_oldest_message_that_may_go_goes_first() -> None:
    """Behind a bot-wide backlog, a chat's later messages keep their place in line: no starving."""
    limits = SendLimits(per_bot=2, window=1.0, chat_interval=0.01, chat_burst=1)
    pushes = [(0.0, chat) for chat in (1, 1, 1, 2, 3, 4, 5, 6)]
    sent = simulate(Pacer(limits), pushes, latency=lambda r: 0.001)
    assert [s.chat_id for s in sent] == [1, 2, 1, 3, 1, 4, 5, 6]


def test_a_retried_message_stays_ahead_of_the_chat_s_later_messages() -> None:
    failed: set[Item] = set()

    def fail_once(pacer: Pacer[Item], ticket: Ticket[Item], now: float) -> bool:
        if ticket.item[1] == 2 and ticket.item not in failed:
            failed.add(ticket.item)
            pacer.retry(ticket, now, now + 3.0)
            return True
        return False

    sent = simulate(Pacer(SendLimits()), [(0.0, 7)] * 4 + [(0.5, 8)], outcome=fail_once)
    chat7 = [(s.item[1], s.start) for s in sent if s.chat_id == 7]
    assert chat7 == [(1, 0.0), (2, 0.0), (2, 3.0), (3, 3.0), (4, 3.0)]
    assert [s.start for s in sent if s.chat_id == 8] == [0.5]


# ------------------------------------------------------------------------------------------ 429s


def _ticket(pacer: Pacer[Item], now: float) -> Ticket[Item]:
    ticket, wake = pacer.poll(now)
    assert ticket is not None, wake
    return ticket


def test_a_429_on_a_chat_that_was_quiet_pauses_the_whole_bot() -> None:
    pacer: Pacer[Item] = Pacer(SendLimits())
    pacer.push(1, (1, 1), 0.0)
    ticket = _ticket(pacer, 0.0)
    assert pacer.flood(ticket, 0.05, retry_after=5) is True
    pacer.push(2, (2, 1), 0.1)
    assert pacer.poll(1.0) == (None, pytest.approx(5.05))
    assert pacer.poll(5.0) == (None, pytest.approx(5.05))
    first, second = _ticket(pacer, 5.05), _ticket(pacer, 5.05)
    assert {first.item, second.item} == {(1, 1), (2, 1)}
    assert pacer.queued == 0 and pacer.in_flight == 2


def test_a_429_on_a_chat_just_written_to_pauses_only_that_chat() -> None:
    pacer: Pacer[Item] = Pacer(SendLimits())
    for n in (1, 2, 3):
        pacer.push(1, (1, n), 0.0)
    pacer.done(_ticket(pacer, 0.0), 0.01)
    second = _ticket(pacer, 0.01)
    assert second.item == (1, 2)
    assert pacer.flood(second, 0.02, retry_after=2) is False
    pacer.push(2, (2, 1), 0.03)
    assert _ticket(pacer, 0.03).item == (2, 1)  # other chats go on
    assert pacer.poll(0.03) == (None, pytest.approx(2.02))
    retried = _ticket(pacer, 2.02)
    assert retried.item == (1, 2)
    pacer.done(retried, 2.03)
    # no burst any more for this chat: one message per interval
    assert pacer.poll(2.03) == (None, pytest.approx(3.03))


def test_429s_in_two_chats_at_once_pause_the_whole_bot() -> None:
    pacer: Pacer[Item] = Pacer(SendLimits())
    for chat in (1, 2):
        pacer.push(chat, (chat, 1), 0.0)
        pacer.push(chat, (chat, 2), 0.0)
    first1, first2 = _ticket(pacer, 0.0), _ticket(pacer, 0.0)
    pacer.done(first1, 0.01)
    pacer.done(first2, 0.01)
    hot1, hot2 = _ticket(pacer, 0.02), _ticket(pacer, 0.02)
    assert (hot1.item, hot2.item) == ((1, 2), (2, 2))
    assert pacer.flood(hot1, 0.03, retry_after=1) is False
    assert pacer.flood(hot2, 0.03, retry_after=1) is True
    pacer.push(3, (3, 1), 0.04)
    assert pacer.poll(0.5) == (None, pytest.approx(1.03))


def test_bot_wide_429s_lower_the_bot_limit_until_things_are_calm_again() -> None:
    pacer: Pacer[Item] = Pacer(SendLimits())
    for chat in range(1, 41):
        pacer.push(chat, (chat, 1), 0.0)
    wave = [_ticket(pacer, 0.0) for _ in range(30)]
    assert pacer.poll(0.0) == (None, None)  # 30 in flight: wait for one to finish
    for ticket in wave[:20]:
        pacer.done(ticket, 0.05)
    assert all(pacer.flood(ticket, 0.06, retry_after=1) for ticket in wave[20:])
    assert pacer.bot_limit == 22  # lowered once for the whole wave, not ten times
    sent_at = []
    now = 1.06
    while pacer.queued:
        due, wake = pacer.poll(now)
        if due is None:
            assert wake is not None
            now = wake
            continue
        sent_at.append(now)
        pacer.done(due, now)
    assert max_in_window(sent_at, 1.0) <= 22
    assert pacer.poll(5.0)[0] is None and pacer.bot_limit == 22
    pacer.poll(11.1)
    pacer.poll(12.2)
    assert pacer.bot_limit == 24
    for n in range(20):
        pacer.poll(13.3 + n * 1.1)
    assert pacer.bot_limit == 30  # back to the configured limit, never above


def test_a_group_with_recent_messages_takes_its_429_itself() -> None:
    pacer: Pacer[Item] = Pacer(SendLimits())
    group = -100
    for n in range(1, 4):
        pacer.push(group, (group, n), 0.0)
    pacer.done(_ticket(pacer, 0.0), 0.01)
    pacer.done(_ticket(pacer, 10.0), 10.01)  # long after the chat interval, inside the group window
    third = _ticket(pacer, 20.0)
    assert pacer.flood(third, 20.01, retry_after=30) is False
    assert pacer.paused_until < 20.01


# ------------------------------------------------------------------------------------- dropping, draining


def test_an_undeliverable_chat_is_dropped_with_its_queue() -> None:
    pacer: Pacer[Item] = Pacer(SendLimits())
    for n in range(1, 4):
        pacer.push(1, (1, n), 0.0)
    pacer.push(2, (2, 1), 0.0)
    ticket = _ticket(pacer, 0.0)
    assert pacer.drop_chat(ticket, 0.01) == [(1, 1), (1, 2), (1, 3)]
    assert pacer.chat_queue(1) == []
    assert pacer.queued == 1
    assert _ticket(pacer, 0.01).item == (2, 1)
    assert pacer.poll(0.02) == (None, None)


def test_drain_returns_what_is_waiting_and_keeps_what_is_in_flight() -> None:
    pacer: Pacer[Item] = Pacer(SendLimits())
    for n in range(1, 4):
        pacer.push(1, (1, n), 0.0)
    pacer.push(2, (2, 1), 0.0)
    in_flight = _ticket(pacer, 0.0)
    assert sorted(pacer.drain()) == [(1, 2), (1, 3), (2, 1)]
    assert pacer.queued == 0 and pacer.poll(0.0) == (None, None)
    pacer.done(in_flight, 0.1)
    assert pacer.in_flight == 0


def test_giving_a_ticket_back_twice_is_refused() -> None:
    pacer: Pacer[Item] = Pacer(SendLimits())
    pacer.push(1, (1, 1), 0.0)
    pacer.push(1, (1, 2), 0.0)
    ticket = _ticket(pacer, 0.0)
    pacer.done(ticket, 0.1)
    with pytest.raises(RuntimeError):
        pacer.done(ticket, 0.2)


def test_chats_left_quiet_are_forgotten() -> None:
    pacer: Pacer[Item] = Pacer(SendLimits())
    simulate(pacer, [(0.0, chat) for chat in range(1, 51)] + [(0.0, -5)])
    assert pacer.chats == 51
    pacer.poll(30.0)
    assert pacer.chats == 1  # the group stays for its minute
    pacer.poll(100.0)
    assert pacer.chats == 0
