// A k6 test in several files, as real suites are: run_test packs this file, the modules it imports
// (./lib/) and the files it opens (./data/) into one k6 archive, checks it as the tasks will run it,
// and every task runs exactly that archive.
//
//   ansible-playbook constellation.loadtest.run_test -e config=config.json -e script=examples/suite/test.js \
//     -e '{"constellation_script_env": {"TARGET": "https://your.service"},
//          "constellation_script_secrets": {"API_TOKEN": "arn:aws:ssm:eu-central-1:123456789012:parameter/shop/api-token"}}'
import http from 'k6/http';
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';

import { parseUsers } from './lib/users.js';
import { userPath } from './lib/paths.js';
import { apiHeaders } from './lib/auth.js';

// Read once per task, in the init context, and shared by the task's VUs.
const users = new SharedArray('users', () => parseUsers(open('./data/users.csv')));

// TARGET comes from constellation_script_env: every task's k6 sees it as __ENV.TARGET.
const TARGET = __ENV.TARGET || 'http://127.0.0.1:8080';

export const options = {
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{name:user}': ['p(95)<500'],
  },
};

export default function () {
  // Each task counts its own iterations: every task walks the whole list of users. To give each
  // user to one VU of the whole run instead, see "Writing the test" in the README.
  const user = users[exec.vu.iterationInInstance % users.length];
  const response = http.get(`${TARGET}${userPath(user)}`, { tags: { name: 'user' }, headers: apiHeaders() });
  check(response, { 'status is 200': (r) => r.status === 200 });
  sleep(0.1);
}
