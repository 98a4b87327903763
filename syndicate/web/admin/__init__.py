"""The /admin dashboard (issue 21): login, charts drawn on the server, read-only.

syndicate/web/admin/views.py     the routes: /admin, /admin/login, /admin/logout
syndicate/web/admin/panels.py    the store's numbers made into the dashboard's charts
syndicate/web/admin/charts.py    bar charts and poll strips as escaped SVG, with tables
syndicate/web/admingate.py       the password check, the session cookie, the lock-out
syndicate/store/dashboard.py     the counts, in SQL
"""
