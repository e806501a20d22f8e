"""The dashboard: every run and each run's page, read-only, rendered on the server from the ledger (``pages``), served
by ``gitops ui`` on loopback (``local_server``) and by the Function App behind Entra sign-in (``function_app``)."""
