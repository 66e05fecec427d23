// The few Grafana panel shapes the dashboard uses, with the defaults it shares: the
// Prometheus data source is the `datasource` variable, instant queries for stats and
// tables, range queries for graphs. Written here rather than vendored (grafonnet)
// so that the mixin needs nothing but the jsonnet CLI.
local datasource = { type: 'prometheus', uid: '${datasource}' };

local reduceOptions = { calcs: ['lastNotNull'], fields: '', values: false };

local thresholds(steps) = {
  mode: 'absolute',
  steps: [{ color: step[0], value: step[1] } for step in steps],
};

{
  datasource: datasource,

  // A value mapping: `values` is [[value, text, color], ...]; `indexed` numbers them.
  valueMapping(values, indexed=true): {
    type: 'value',
    options: {
      [values[i][0]]: { text: values[i][1], color: values[i][2] }
                      + (if indexed then { index: i } else {})
      for i in std.range(0, std.length(values) - 1)
    },
  },

  thresholds: thresholds,

  // One query. `legend` null leaves legendFormat out.
  instant(expr, refId='A', legend='__auto', format=null):
    { datasource: datasource, expr: expr, refId: refId }
    + (if legend != null then { legendFormat: legend } else {})
    + { instant: true, range: false }
    + (if format != null then { format: format } else {}),
  range(expr, legend, refId='A'):
    { datasource: datasource, expr: expr, refId: refId, legendFormat: legend, range: true },

  row(id, title, y): {
    type: 'row',
    id: id,
    title: title,
    collapsed: false,
    gridPos: { h: 1, w: 24, x: 0, y: y },
    panels: [],
  },

  // What every panel but a row has.
  panel(type, id, title, description, gridPos, targets): {
    type: type,
    id: id,
    title: title,
    description: description,
    datasource: datasource,
    gridPos: gridPos,
    targets: targets,
  },

  // textMode value_and_name names each series' value (one per region).
  stat(id, title, description, gridPos, targets, unit, steps, mappings=[], textMode='value'):
    self.panel('stat', id, title, description, gridPos, targets) {
      fieldConfig: {
        defaults: {
          unit: unit,
          mappings: mappings,
          thresholds: thresholds(steps),
          color: { mode: 'thresholds' },
        },
        overrides: [],
      },
      options: {
        reduceOptions: reduceOptions,
        colorMode: 'background',
        graphMode: 'none',
        justifyMode: 'center',
        textMode: textMode,
        orientation: 'auto',
      },
    },

  bargauge(id, title, description, gridPos, targets, defaults):
    self.panel('bargauge', id, title, description, gridPos, targets) {
      fieldConfig: { defaults: defaults, overrides: [] },
      options: {
        orientation: 'horizontal',
        displayMode: 'basic',
        showUnfilled: true,
        reduceOptions: reduceOptions,
      },
    },

  piechart(id, title, description, gridPos, targets):
    self.panel('piechart', id, title, description, gridPos, targets) {
      fieldConfig: { defaults: { unit: 'none', color: { mode: 'palette-classic' } }, overrides: [] },
      options: {
        pieType: 'donut',
        displayLabels: ['name', 'value'],
        legend: { displayMode: 'list', placement: 'right', showLegend: true },
        reduceOptions: reduceOptions,
      },
    },

  table(id, title, description, gridPos, targets, transformations, fieldConfig, options):
    self.panel('table', id, title, description, gridPos, targets) {
      transformations: transformations,
      fieldConfig: fieldConfig,
      options: options,
    },

  // Up/down over time, one stripe per series, 1 green and 0 red.
  stateTimeline(id, title, description, gridPos, targets, mapping):
    self.panel('state-timeline', id, title, description, gridPos, targets) {
      fieldConfig: {
        defaults: {
          mappings: [mapping],
          color: { mode: 'thresholds' },
          thresholds: thresholds([['red', null], ['green', 1]]),
        },
        overrides: [],
      },
      options: {
        showValue: 'never',
        mergeValues: true,
        rowHeight: 0.8,
        legend: { displayMode: 'list', placement: 'bottom', showLegend: false },
      },
    },

  timeseries(id,
             title,
             description,
             gridPos,
             targets,
             unit,
             steps=[['green', null]],
             thresholdsStyle='off',
             overrides=[],
             extra={}):
    self.panel('timeseries', id, title, description, gridPos, targets) {
      fieldConfig: {
        defaults: {
          unit: unit,
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: 0,
            showPoints: 'never',
            spanNulls: false,
            thresholdsStyle: { mode: thresholdsStyle },
          },
          color: { mode: 'palette-classic' },
          thresholds: thresholds(steps),
        } + extra,
        overrides: overrides,
      },
      options: {
        legend: {
          displayMode: 'table',
          placement: 'right',
          showLegend: true,
          calcs: ['lastNotNull', 'max'],
        },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    },

  // The series whose names match `regex` drawn as dashed reference lines.
  referenceLine(regex, color): {
    matcher: { id: 'byRegexp', options: regex },
    properties: [
      { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
      { id: 'color', value: { mode: 'fixed', fixedColor: color } },
      { id: 'custom.fillOpacity', value: 0 },
      { id: 'custom.lineWidth', value: 2 },
    ],
  },

  // A query variable over label_values(`selector`, `name`): multi-value, with All.
  queryVariable(name, label, selector): {
    name: name,
    label: label,
    type: 'query',
    datasource: datasource,
    definition: 'label_values(%s, %s)' % [selector, name],
    query: { query: 'label_values(%s, %s)' % [selector, name], refId: name + '-variable' },
    refresh: 2,
    sort: 1,
    multi: true,
    includeAll: true,
    allValue: '.*',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
    regex: '',
    hide: 0,
  },
}
