"""After a purchase: monitoring against the analysis bands, returns within AWS's window, renewals before expiry."""
