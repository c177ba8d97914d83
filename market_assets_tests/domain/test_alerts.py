"""How an alert is worded: Slack-compatible JSON, no secret in it, the webhook's secret masked."""

import json

from market_assets.domain.alerts import Alert, masked_url, slack_message, symbols_named


def _alert(**changes) -> Alert:
    facts = {
        "kind": "close run failed",
        "index": "DJI",
        "session": "2026-12-02",
        "symbols": ("SYNU004.US",),
        "what": "dagster._core.definitions.events.Failure: 1 of 30 symbols failed:\n"
        "- SYNU004.US: Stooq answered 'No data' (GET http://x/q/d/l/?s=synu004.us&apikey=k3y)",
        "link": "http://ui:3000/runs/abc",
    }
    return Alert(**{**facts, **changes})


def test_the_message_names_the_facts_and_says_what_went_wrong_without_the_exception_class():
    message = slack_message(_alert())

    assert message["text"] == (
        "DJI 2026-12-02: close run failed: 1 of 30 symbols failed: - SYNU004.US: Stooq answered 'No data' "
        "(GET http://x/q/d/l/?s=synu004.us&apikey=k3y) (http://ui:3000/runs/abc)"
    )
    assert message["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "DJI 2026-12-02: close run failed"}}
    assert [field["text"] for field in message["blocks"][1]["fields"]] == [
        "*Index*\nDJI",
        "*Session*\n2026-12-02",
        "*Symbols*\nSYNU004.US",
    ]
    assert message["blocks"][2]["text"]["text"].startswith("```1 of 30 symbols failed:\n- SYNU004.US")
    assert message["blocks"][3]["text"]["text"] == "<http://ui:3000/runs/abc|Open in Dagster>"


def test_no_secret_survives_anywhere_in_the_message():
    message = slack_message(_alert(index="k3y"), secrets=["k3y", ""])

    assert "k3y" not in json.dumps(message)
    assert "apikey=***" in message["blocks"][2]["text"]["text"]


def test_long_lists_and_long_failures_are_cut_to_what_a_channel_shows():
    symbols = tuple(f"S{number:02d}.US" for number in range(25))
    message = slack_message(_alert(symbols=symbols, what="x" * 5000))

    assert message["blocks"][1]["fields"][2]["text"].endswith("S09.US and 15 more")
    assert len(message["blocks"][2]["text"]["text"]) < 1600 and message["blocks"][2]["text"]["text"].endswith(" ...```")


def test_the_webhook_url_shows_only_its_host():
    assert masked_url("https://hooks.slack.com/services/T0/B0/secret") == "https://hooks.slack.com/***"
    assert masked_url("not a url") == "***"


def test_the_symbols_a_failure_names_come_in_its_order_and_whole():
    text = "- B.US: timed out\n- A.US: No data\n- AB.US is fine"
    assert symbols_named(text, ["A.US", "B.US", "C.US", "AB"]) == ("B.US", "A.US")
