"""The market's own rules, free of Dagster: candles, quality rules, adjustment detection, membership
spells, exchange sessions and when a close starts. Tested on small frames; the Dagster wiring in
`market_assets.defs` calls them."""
