// API_TOKEN comes from constellation_script_secrets: ECS reads it from SSM Parameter Store (or
// Secrets Manager) when the task starts, and k6 sees it as __ENV.API_TOKEN. It never passes
// through Ansible, the run's files or the report. Without it, requests go without a token.
export function apiHeaders() {
  return __ENV.API_TOKEN ? { Authorization: `Bearer ${__ENV.API_TOKEN}` } : {};
}
