// Where a user's page is on the target.
export function userPath(user) {
  return `/api/users/${encodeURIComponent(user.name)}`;
}
