// A small k6 script for the demo: three API calls with names, one of them failing now and then.
// TARGET is the URL of the service under test (the demo starts one on loopback). Every task of a
// run gets it from constellation_script_env, as k6's --env:
//   -e '{"constellation_script_env": {"TARGET": "https://staging.example.com"}}'
// (or -e constellation_script_env='{"TARGET": "..."}', or a survey's textarea with that JSON).
import http from 'k6/http';
import { check, sleep } from 'k6';

const target = __ENV.TARGET;

// Thresholds in k6's syntax: visualize judges them on the merged data of every region
// (`constellation_thresholds` adds more without touching the script).
export const options = {
  thresholds: {
    http_req_duration: ['p(95)<500', 'p(99)<1500'],
    'http_req_duration{name:list-users}': ['p(95)<200'],
    http_req_failed: ['rate<0.05'],
    checks: ['rate>0.99'],
  },
};

export default function () {
  const users = http.get(`${target}/api/users`, { tags: { name: 'list-users' } });
  check(users, { 'users listed': (r) => r.status === 200 });
  http.get(`${target}/api/search?q=k6`, { tags: { name: 'search' } });
  http.post(`${target}/api/orders`, JSON.stringify({ item: 1 }), { tags: { name: 'create-order' } });
  if (__ITER % 25 === 0) {
    http.get(`${target}/api/fail`, { tags: { name: 'checkout' } });
  }
  sleep(0.2);
}
