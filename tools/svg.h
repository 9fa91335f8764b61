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

#endif
