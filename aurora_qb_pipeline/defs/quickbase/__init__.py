"""The Quickbase side: the export asset (``quickbase/designs_export``) and its check."""
