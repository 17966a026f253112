/*
 * confusion.c - a confusion matrix as a gnuplot heat map (inferlab eval --plot).
 *
 * Colour is the row-normalized fraction (how a true class's samples were labelled), so a
 * rare class reads as clearly as a common one; the cell text is the raw count. The data and
 * script go to a scratch folder that is removed afterwards.
 */
#include "report_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Name of class i from "a,b,c" into buf ("class i" past the list's end). */
static void class_name(const char *labels, int i, char *buf, size_t n) {
    const char *s = labels ? labels : "";
    for (int j = 0; j < i && *s; j++) {
        s += strcspn(s, ",");
        if (*s) s++;
    }
    size_t len = strcspn(s, ",");
    if (*s && len) snprintf(buf, n, "%.*s", (int)len, s);
    else snprintf(buf, n, "class %d", i);
}

il_status il_plot_confusion(const int64_t *conf, int k, const char *labels, const char *title, const char *out) {
    const char *ext = strrchr(out, '.');
    const char *term = !ext ? NULL
                       : !strcmp(ext, ".svg") ? "svg size 760,680 font 'Helvetica,11' background rgb 'white'"
                       : !strcmp(ext, ".png") ? "pngcairo size 1140,1020 font 'Helvetica,15'"
                       : !strcmp(ext, ".pdf") ? "pdfcairo size 6in,5.4in font 'Helvetica,9'"
                                              : NULL;
    if (!term) return il_error(IL_ERR_INVALID, "the plot's file name must end in .svg, .png or .pdf");
    if (k < 1 || k > 100) return il_error(IL_ERR_INVALID, "a confusion matrix of %d classes is not plotted (1-100)", k);
    if (strchr(out, '\'')) return il_error(IL_ERR_INVALID, "%s: file names with a single quote are not supported", out);
    char work[] = "/tmp/inferlab-confusion-XXXXXX", dat[64], gp[64];
    if (!mkdtemp(work)) return il_error(IL_ERR_IO, "scratch folder: %s", strerror(errno));
    snprintf(dat, sizeof dat, "%s/cm.dat", work);
    snprintf(gp, sizeof gp, "%s/cm.gp", work);
    il_status st = IL_OK;
    FILE *d = fopen(dat, "w"), *f = fopen(gp, "w");
    if (!d || !f) {
        st = il_error(IL_ERR_IO, "%s: %s", work, strerror(errno));
        goto out;
    }
    for (int i = 0; i < k; i++) {
        int64_t row = 0;
        for (int j = 0; j < k; j++) row += conf[(int64_t)i * k + j];
        for (int j = 0; j < k; j++) {
            int64_t c = conf[(int64_t)i * k + j];
            fprintf(d, "%d %d %.6f %lld\n", j, i, row ? (double)c / row : 0.0, (long long)c);
        }
        fprintf(d, "\n");
    }
    fprintf(f, "set terminal %s\nset output '%s'\nset encoding utf8\nset termoption noenhanced\n", term, out);
    fprintf(f, "set title ");
    rp_gp_str(f, title ? title : "confusion matrix");
    fprintf(f, "\nset xlabel 'predicted class'\nset ylabel 'true class'\nset size ratio -1\n"
               "set xrange [-0.5:%d.5]\nset yrange [%d.5:-0.5]\nset tics scale 0\n"
               "set cbrange [0:1]\nset cblabel 'fraction of the true class'\n"
               "set palette defined (0 '#ffffff', 0.25 '#c6dbef', 1 '#2171b5')\n",
            k - 1, k - 1);
    char name[64];
    for (int axis = 0; axis < 2; axis++) {
        fprintf(f, "set %s (", axis ? "ytics" : "xtics");
        for (int i = 0; i < k; i++) {
            class_name(labels, i, name, sizeof name);
            rp_gp_str(f, name);
            fprintf(f, " %d%s", i, i + 1 < k ? ", " : "");
        }
        fprintf(f, ")%s\n", axis ? "" : " rotate by 40 right");
    }
    fprintf(f, "plot '%s' using 1:2:3 with image notitle, '' using 1:2:(sprintf('%%d', $4)) with labels font ',%d' "
               "notitle\nunset output\n", dat, k > 20 ? 6 : 9);
    if (fclose(d) | fclose(f)) st = il_error(IL_ERR_IO, "%s: write error", work);
    d = f = NULL;
    if (!st) st = rp_run_gnuplot(gp);
out:
    if (d) fclose(d);
    if (f) fclose(f);
    unlink(dat), unlink(gp), rmdir(work);
    return st;
}
