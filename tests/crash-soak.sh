#!/usr/bin/env bash
# Crash soak: the crash test's first scenario with many rounds (default
# 1,000). A real `baro run` is killed with SIGKILL at a random moment while a
# client sends through its control socket; after every round the node comes
# back, and at the end every message it answered `sent` for must be in its
# history exactly once, still queued, and reach a peer exactly once.
#
#   tests/crash-soak.sh [ROUNDS]
#
# Prints the rounds, the messages acknowledged and how many were lost (the
# test fails, naming them, if any was).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-1000}"
# Release builds, and kills within 30 ms of the node answering (a few dozen
# messages a round, so that 1,000 rounds keep the store and the final
# delivery to a peer to tens of thousands of messages).
BARO_CRASH_ROUNDS="$rounds" BARO_CRASH_MIN_MS="${BARO_CRASH_MIN_MS:-0}" \
    BARO_CRASH_MAX_MS="${BARO_CRASH_MAX_MS:-30}" \
    BARO_CRASH_ROUNDS_PER_ROOM="${BARO_CRASH_ROUNDS_PER_ROOM:-40}" \
    cargo test --release -p baro-tests --test crash \
    no_acknowledged_message_is_lost_when_the_node_is_killed -- --nocapture 2>&1 \
    | grep --line-buffered -E "rounds|kills|received each|lost|did not receive|panicked|test result"
