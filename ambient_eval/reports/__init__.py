"""Results -> self-contained Plotly HTML reports that open offline."""
from ambient_eval.reports.html import Report, default_report_path

__all__ = ["Report", "default_report_path"]
