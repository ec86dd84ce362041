// The users of data/users.csv: a header line, then one user a line.
export function parseUsers(csv) {
  const [header, ...lines] = csv.split('\n').map((line) => line.trim()).filter((line) => line.length > 0);
  const columns = header.split(',');
  return lines.map((line) => Object.fromEntries(line.split(',').map((value, i) => [columns[i], value])));
}
