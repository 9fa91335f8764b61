/* SPDX-License-Identifier: MIT */
/*
 * svg.h — a small, self-contained SVG line-plot writer.
 *
 * A figure has one or more panels stacked vertically; each panel has axes
 * with tick labels, axis titles with units, and a legend.  Every panel
 * carries its data-to-pixel mapping as data-* attributes, so a test can map
 * the plotted points back to values.
 */
#ifndef USBTS_SVG_H
#define USBTS_SVG_H

#include <stdbool.h>
#include <stdio.h>

struct svg_series {
    const char *name;
    const char *color;
    const double *x, *y;
    int n;
    bool dashed;
    bool markers; /* draw a dot at each point as well */
};

struct svg_panel {
    const char *title;
    const char *xlabel, *ylabel;
    const struct svg_series *series;
    int nseries;
    bool logy;
    const char *const *xcategories; /* if set, x values are indices into these names */
    int ncategories;
};

/* Writes the figure to f (which the caller opened and closes); false (errno
 * set) if writing failed. */
bool svg_write(FILE *f, const char *title, const struct svg_panel *panels, int npanels);

/* A vertical line across a panel at x, labelled (a new generation, an event). */
struct svg_vline {
    double x;
    const char *label;
};

/* What a panel may add: vertical lines, and series drawn as dots only (bit i
 * of dots_only: series i; with markers set) such as points picked out of
 * another series. */
struct svg_panel_extra {
    const struct svg_vline *vlines;
    int nvlines;
    unsigned dots_only;
};

/* svg_write with extras[i] for panel i (extras may be NULL). */
bool svg_write_ex(FILE *f, const char *title, const struct svg_panel *panels, const struct svg_panel_extra *extras,
                  int npanels);

/* True when the series' positive y values span two decades or more: plot
 * them on a log axis, or the small values vanish into the bottom line. */
bool svg_spans_decades(const struct svg_series *series, int nseries);

#endif
