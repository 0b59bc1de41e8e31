"""The AI Stand Coach: local demand forecasts, stock-out risk, refill recommendations,
insights and expansion scoring. Runs on the device, offline, with numpy only.

- :mod:`app.coach.forecast`: per-series demand classification and forecasting (batch).
- :mod:`app.coach.policy`: stock-out risk before the next visit and order-up-to refills.
- :mod:`app.coach.insights`: slow movers, under-faced best sellers, trend breaks, stands
  behind their peers, counts overdue, loyalty tiers within reach.
- :mod:`app.coach.agent`: runs the whole coach over a program and keeps insights current.
- :mod:`app.coach.expansion`: scores candidate locations against the best existing stands.
"""
