// A Prometheus rule file written as YAML that reads like a hand-written one: each
// rule's `comment` (a hidden field) above it, expressions as literal blocks, summaries
// quoted, descriptions folded to the page width. std.manifestYamlDoc writes no
// comments and puts a one-line description on one 500-column line, so the few shapes
// a rule file has are written here; tests/mixin.rs reads the file back and holds it
// equal to the mixin's rules.
local pageWidth = 88;  // columns of folded text, after the indentation

// Keys in the order a reader expects them; any other key follows, sorted.
local keyOrder = [
  'name',
  'interval',
  'limit',
  'record',
  'alert',
  'expr',
  'for',
  'keep_firing_for',
  'labels',
  'annotations',
  'rules',
  'summary',
  'description',
  'runbook_url',
];

local ordered(object) =
  std.filter(function(k) std.objectHas(object, k), keyOrder)
  + std.filter(function(k) !std.member(keyOrder, k), std.objectFields(object));

// How often `part` occurs in `s` (std.findSubstr is slow in jsonnet 0.18).
local occurrences(s, part) = (std.length(s) - std.length(std.strReplace(s, part, ''))) / std.length(part);
local contains(s, part) = occurrences(s, part) > 0;

// arr[from:to]: std.makeArray, ten times as fast as a slice in jsonnet 0.18.
local sub(arr, from, to=std.length(arr)) = std.makeArray(to - from, function(i) arr[from + i]);

// Plain scalars YAML could read as something other than this string.
local reserved = ['true', 'false', 'null', 'yes', 'no', 'on', 'off', 'y', 'n', '~'];

// Whether the character `c` is one of `chars` (std.member on a string searches with
// std.findSubstr, slow in jsonnet 0.18).
local oneOf(chars, c) = contains(chars, c);

// Whether `s` can be written unquoted and read back as the same string.
local isPlain(s) =
  std.length(s) > 0
  && !oneOf('-?:,[]{}#&*!|>\'"%@` ', s[0])
  && !oneOf(' :', s[std.length(s) - 1])
  && !contains(s, ': ')
  && !contains(s, ' #')
  && !contains(s, '\n')
  && !contains(s, '\t')
  && !(std.length(s) <= 5 && std.member(reserved, std.asciiLower(s)))
  // A Prometheus duration (3m, 1h30m) starts with a digit, yet is a string to YAML.
  && (!oneOf('0123456789.+', s[0])
      || (std.length(std.filter(function(c) !oneOf('0123456789smhdwy', c), std.stringChars(s))) == 0
          && oneOf('smhdwy', s[std.length(s) - 1])));

// Lines of at most pageWidth columns (unless one word is longer) that a folded block
// scalar joins back into `text`: a line ends only where one space separates two
// words, and never inside a template action ({{ ... }}).
local fold(text) =
  local words = std.split(text, ' ');
  local nesting(s) = occurrences(s, '{{') - occurrences(s, '}}');
  // depth[i]: how many template actions are open before words[i].
  local depth = std.foldl(
    function(sums, word) sums + [sums[std.length(sums) - 1] + nesting(word)],
    words,
    [0]
  );
  local breakable(i) = depth[i] == 0 && words[i] != '' && words[i - 1] != '';
  local starts = [0] + [i for i in std.range(1, std.length(words) - 1) if breakable(i)];
  local ends = sub(starts, 1) + [std.length(words)];
  local chunks = [
    std.join(' ', sub(words, starts[k], ends[k]))
    for k in std.range(0, std.length(starts) - 1)
  ];
  std.foldl(
    function(lines, chunk)
      local last = lines[std.length(lines) - 1];
      if std.length(last) + 1 + std.length(chunk) > pageWidth
      then lines + [chunk]
      else sub(lines, 0, std.length(lines) - 1) + [last + ' ' + chunk],
    sub(chunks, 1),
    [chunks[0]]
  );

local indented(indent, lines) =
  [if line == '' then '' else indent + line for line in lines];

// `key: value` for a string, number or boolean: the key after `at` (the indentation,
// or the indentation and `- `), the lines of a block at `indent` + 2. (No string is
// sliced here: jsonnet 0.18 slices strings a character at a time.)
local scalar(at, indent, key, value) =
  local head = at + key + ':';
  if !std.isString(value) then [head + ' ' + std.manifestJsonMinified(value)]
  else if contains(value, '\n') then
    local body = std.split(value, '\n');
    local chomp = if std.endsWith(value, '\n') then '' else '-';
    assert !std.endsWith(value, '\n\n') : key + ': more than one trailing newline';
    assert !std.startsWith(value, ' ') : key + ': a block may not start with a space';
    [head + ' |' + chomp]
    + indented(indent + '  ', if chomp == '' then sub(body, 0, std.length(body) - 1) else body)
  else if key == 'description' && value != ''
          && !std.startsWith(value, ' ') && !std.endsWith(value, ' ') then
    [head + ' >-'] + indented(indent + '  ', fold(value))
  else if key == 'summary' || !isPlain(value) then [head + ' ' + std.escapeStringJson(value)]
  else [head + ' ' + value];

// A text block's lines as YAML comments at `indent`.
local comment(indent, text) =
  local lines = std.split(text, '\n');
  [
    if line == '' then indent + '#' else indent + '# ' + line
    for line in sub(lines, 0, std.length(lines) - 1)
  ];

// The lines of `object`'s fields at `indent`, the first one after `firstAt` (the
// indentation and `- ` in a sequence); then sequences of mappings as `- ` items, a
// blank line between them, each after its (hidden) comment.
local mapping(indent, object, firstAt=indent) =
  local fields = ordered(object);
  std.flattenArrays([
    local key = fields[i];
    local value = object[key];
    local at = if i == 0 then firstAt else indent;
    if std.isObject(value) && std.length(value) > 0
    then [at + key + ':'] + mapping(indent + '  ', value)
    else if std.isArray(value) && std.length(value) > 0
    then [at + key + ':'] + sequence(indent + '  ', value)
    else scalar(at, indent, key, value)
    for i in std.range(0, std.length(fields) - 1)
  ]), sequence(indent, items) =
  std.flattenArrays([
    (if i > 0 then [''] else [])
    + (if std.objectHasAll(items[i], 'comment') then comment(indent, items[i].comment) else [])
    + mapping(indent + '  ', items[i], indent + '- ')
    for i in std.range(0, std.length(items) - 1)
  ]);

{
  // The rule file for `groups`, under the comment `header`.
  ruleFile(header, groups)::
    std.join('\n', comment('', header) + [''] + mapping('', { groups: groups })),
}
