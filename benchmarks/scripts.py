"""The k6 scripts the benchmarks run: a realistic mix of named requests against one target."""

MIXED_REQUESTS = """
import http from 'k6/http';
export const options = {{ vus: {vus}, duration: '{duration}', summaryTrendStats: ['avg', 'p(50)', 'p(90)', 'p(95)', 'p(99)'] }};
const target = __ENV.TARGET;
export default function () {{
  http.get(`${{target}}/api/users`, {{ tags: {{ name: 'list-users' }} }});
  http.get(`${{target}}/api/orders`, {{ tags: {{ name: 'list-orders' }} }});
  http.post(`${{target}}/api/orders`, '{{"item": 1}}', {{ tags: {{ name: 'create-order' }} }});
  http.get(`${{target}}/api/search?q=x`, {{ tags: {{ name: 'search' }} }});
  if (__ITER % 20 === 0) {{
    http.get(`${{target}}/api/fail`, {{ tags: {{ name: 'checkout' }} }});
  }}
}}
"""


def mixed_requests(vus: int, duration: str) -> str:
    return MIXED_REQUESTS.format(vus=vus, duration=duration)
