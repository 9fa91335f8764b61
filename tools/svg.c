/* SPDX-License-Identifier: MIT */
/*
 * svg.c — the SVG writer.  Nice ticks (1, 2, 5 x 10^k), optional log y axis,
 * categorical x axis for per-scenario plots.
 */
#include "svg.h"

#include <math.h>
#include <string.h>

#define WIDTH 860
#define PANEL_H 360
#define LEFT 80
#define RIGHT 190
#define TOP 50
#define BOTTOM 60

static void esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else
            fputc(*s, f);
    }
}

static double nice_step(double span, int target)
{
    double raw = span / target, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

static void range(const struct svg_panel *p, bool xaxis, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int s = 0; s < p->nseries; s++)
        for (int i = 0; i < p->series[s].n; i++) {
            double v = xaxis ? p->series[s].x[i] : p->series[s].y[i];
            if (!isfinite(v) || (!xaxis && p->logy && v <= 0))
                continue;
            if (v < *lo)
                *lo = v;
            if (v > *hi)
                *hi = v;
        }
    if (!isfinite(*lo)) {
        *lo = xaxis || !p->logy ? 0 : 1;
        *hi = *lo + 1;
    }
    if (xaxis && p->xcategories) {
        *lo = -0.5;
        *hi = p->ncategories - 0.5;
        return;
    }
    if (!xaxis && p->logy) {
        *lo = pow(10, floor(log10(*lo)));
        *hi = pow(10, ceil(log10(*hi) + 1e-9));
        return;
    }
    if (!xaxis && *lo > 0)
        *lo = 0; /* errors and bounds read best from zero */
    if (*hi <= *lo)
        *hi = *lo + 1;
    if (!xaxis) {
        double step = nice_step(*hi - *lo, 5);
        *hi = ceil(*hi / step) * step;
    }
}

static void write_panel(FILE *f, const struct svg_panel *p, const struct svg_panel_extra *ex, int y0)
{
    double xlo, xhi, ylo, yhi;
    range(p, true, &xlo, &xhi);
    range(p, false, &ylo, &yhi);
    double left = LEFT, right = WIDTH - RIGHT, top = y0 + TOP, bottom = y0 + PANEL_H - BOTTOM;
    double ly0 = p->logy ? log10(ylo) : ylo, ly1 = p->logy ? log10(yhi) : yhi;
#define PX(x) (left + ((x) - xlo) / (xhi - xlo) * (right - left))
#define PY(y) (bottom - ((p->logy ? log10(y) : (y)) - ly0) / (ly1 - ly0) * (bottom - top))
    fprintf(f,
            "<g class=\"panel\" data-xmin=\"%.9g\" data-xmax=\"%.9g\" data-ymin=\"%.9g\" data-ymax=\"%.9g\" "
            "data-logy=\"%d\" data-left=\"%.2f\" data-right=\"%.2f\" data-top=\"%.2f\" data-bottom=\"%.2f\">\n",
            xlo, xhi, ylo, yhi, p->logy ? 1 : 0, left, right, top, bottom);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"15\" text-anchor=\"middle\">", (left + right) / 2, top - 18);
    esc(f, p->title);
    fputs("</text>\n", f);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n", left, top,
            right - left, bottom - top);
    /* y ticks */
    if (p->logy) {
        for (double v = ylo; v <= yhi * 1.0001; v *= 10) {
            fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", left, right, PY(v),
                    PY(v));
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g</text>\n", left - 6,
                    PY(v) + 4, v);
        }
    } else {
        double step = nice_step(yhi - ylo, 5);
        for (double v = ceil(ylo / step) * step; v <= yhi + step * 1e-6; v += step) {
            fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", left, right, PY(v),
                    PY(v));
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g</text>\n", left - 6,
                    PY(v) + 4, fabs(v) < step * 1e-6 ? 0.0 : v);
        }
    }
    /* x ticks */
    if (p->xcategories) {
        for (int i = 0; i < p->ncategories; i++) {
            fprintf(f,
                    "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\" "
                    "transform=\"rotate(-30 %.1f %.1f)\">",
                    PX(i), bottom + 14, PX(i), bottom + 14);
            esc(f, p->xcategories[i]);
            fputs("</text>\n", f);
        }
    } else {
        double step = nice_step(xhi - xlo, 8);
        for (double v = ceil(xlo / step) * step; v <= xhi + step * 1e-6; v += step)
            fprintf(f,
                    "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>"
                    "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%g</text>\n",
                    PX(v), PX(v), bottom, bottom + 5, PX(v), bottom + 18, v);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\">", (left + right) / 2,
            bottom + (p->xcategories ? 55 : 40));
    esc(f, p->xlabel);
    fputs("</text>\n", f);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\" transform=\"rotate(-90 %.1f %.1f)\">",
            left - 55, (top + bottom) / 2, left - 55, (top + bottom) / 2);
    esc(f, p->ylabel);
    fputs("</text>\n", f);
    /* series and legend */
    for (int s = 0; s < p->nseries; s++) {
        const struct svg_series *se = &p->series[s];
        fprintf(f, "<polyline class=\"series\" data-series=\"");
        esc(f, se->name);
        fprintf(f, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"%s points=\"",
                (ex && s < 32 && (ex->dots_only >> s & 1u)) ? "none" : se->color, se->dashed ? " stroke-dasharray=\"6 3\"" : "");
        for (int i = 0; i < se->n; i++)
            if (isfinite(se->x[i]) && isfinite(se->y[i]) && (!p->logy || se->y[i] > 0))
                fprintf(f, "%.3f,%.3f ", PX(se->x[i]), PY(se->y[i]));
        fputs("\"/>\n", f);
        if (se->markers)
            for (int i = 0; i < se->n; i++)
                if (isfinite(se->x[i]) && isfinite(se->y[i]) && (!p->logy || se->y[i] > 0))
                    fprintf(f, "<circle cx=\"%.3f\" cy=\"%.3f\" r=\"3\" fill=\"%s\"/>\n", PX(se->x[i]), PY(se->y[i]),
                            se->color);
        double ly = top + 14 + 20 * s;
        fprintf(f,
                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>"
                "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">",
                right + 12, right + 40, ly, ly, se->color, se->dashed ? " stroke-dasharray=\"6 3\"" : "", right + 46,
                ly + 4);
        esc(f, se->name);
        fputs("</text>\n", f);
    }
    for (int v = 0; ex && v < ex->nvlines; v++) {
        const struct svg_vline *vl = &ex->vlines[v];
        if (!(vl->x >= xlo && vl->x <= xhi))
            continue;
        fprintf(f,
                "<line class=\"marker\" data-x=\"%.9g\" x1=\"%.3f\" x2=\"%.3f\" y1=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"#9467bd\" stroke-dasharray=\"3 3\"/><text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" "
                "fill=\"#9467bd\">",
                vl->x, PX(vl->x), PX(vl->x), top, bottom, PX(vl->x) + 3, top + 12 + 12 * (v % 3));
        esc(f, vl->label);
        fputs("</text>\n", f);
    }
    fputs("</g>\n", f);
#undef PX
#undef PY
}

bool svg_spans_decades(const struct svg_series *series, int nseries)
{
    double lo = INFINITY, hi = 0;
    for (int s = 0; s < nseries; s++)
        for (int i = 0; i < series[s].n; i++) {
            double v = series[s].y[i];
            if (isfinite(v) && v > 0) {
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
        }
    return isfinite(lo) && hi >= 100 * lo;
}

bool svg_write(FILE *f, const char *title, const struct svg_panel *panels, int npanels)
{
    return svg_write_ex(f, title, panels, NULL, npanels);
}

bool svg_write_ex(FILE *f, const char *title, const struct svg_panel *panels, const struct svg_panel_extra *extras,
                  int npanels)
{
    int h = PANEL_H * npanels + 30;
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\">\n<title>",
            WIDTH, h, WIDTH, h);
    esc(f, title);
    fprintf(f, "</title>\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    for (int i = 0; i < npanels; i++)
        write_panel(f, &panels[i], extras ? &extras[i] : NULL, 15 + i * PANEL_H);
    fputs("</svg>\n", f);
    return fflush(f) == 0 && !ferror(f);
}
