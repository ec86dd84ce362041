# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Results: what a run measured, where it is kept, and what it means.

The latency histogram, the records a task writes each interval, the results store's layout and
readers (the S3 keys of a run, the run-id rule, the Timestream and S3 readers that progress and
the report both use), k6 thresholds, the report's data and its HTML page. The lowest layer: it
imports the standard library and itself only (botocore only where a caller hands it a client), so
the aggregator's image ships it as it is, as the package ``results``. Nothing here may import
``run`` or ``aws``.
"""
