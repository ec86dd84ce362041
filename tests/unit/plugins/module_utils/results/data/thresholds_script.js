// A script whose options hold every form of threshold k6 accepts, for `k6 inspect` in test_thresholds.py.
import http from 'k6/http';

export const options = {
  vus: 1,
  duration: '1s',
  thresholds: {
    http_req_duration: ['p(95)<500', { threshold: 'p(99)<1500', abortOnFail: true, delayAbortEval: '10s' }],
    'http_req_duration{region:us-east-2,name:GET /api}': ['avg<200'],
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
  },
};

export default function () {
  http.get('http://127.0.0.1:9/');
}
