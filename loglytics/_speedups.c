/*
 * loglytics._speedups: the ingest hot path's per-line scans, in C.
 *
 * Why: masking (a regex split per line) and parsing numeric parameters
 * (float() per value, raising on many) were most of the ingest cost.  Each
 * function here does a whole batch in one C loop and must return exactly
 * what the Python definitions return (loglytics.speedups has them, and the
 * tests compare the two), so any change here needs the same change there.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

/* Bits of CLASS[ch] for ASCII ch: a value starts at [0-9] and continues
 * over [0-9A-Za-z_.:-] (masking.py's _DEFAULT_PATTERN; ASCII only). */
#define START 1
#define CONT 2
/* ...and ASCII characters that can occur in a string float() accepts:
 * digits, signs, '.', '_', exponents, "infinity"/"nan" in any case, and
 * the whitespace it strips. */
#define FLOATISH 4

static unsigned char CLASS[128];

static void
init_classes(void)
{
    int c;
    for (c = '0'; c <= '9'; c++)
        CLASS[c] = START | CONT;
    for (c = 'A'; c <= 'Z'; c++)
        CLASS[c] = CONT;
    for (c = 'a'; c <= 'z'; c++)
        CLASS[c] = CONT;
    CLASS['_'] = CLASS['.'] = CLASS[':'] = CLASS['-'] = CONT;
    for (c = 0; c < 128; c++) {
        if ((c >= '0' && c <= '9') || (c != 0 && strchr("+-._eEiInNfFtTyYaA", c) != NULL) ||
            Py_UNICODE_ISSPACE(c))
            CLASS[c] |= FLOATISH;
    }
}

#define IS(ch, bit) ((ch) < 128 && (CLASS[(ch)] & (bit)))

/* What one scan found: a value [start, end) or a literal "<*>" at start. */
typedef struct {
    Py_ssize_t start;
    Py_ssize_t end;
    int is_value;
} Span;

/* Spans of one message; the buffer is reused across a batch's messages. */
typedef struct {
    Span *items;
    Py_ssize_t len;
    Py_ssize_t cap;
} Spans;

static int
spans_push(Spans *spans, Py_ssize_t start, Py_ssize_t end, int is_value)
{
    if (spans->len == spans->cap) {
        Py_ssize_t cap = spans->cap ? spans->cap * 2 : 16;
        Span *items = PyMem_Realloc(spans->items, (size_t)cap * sizeof(Span));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        spans->items = items;
        spans->cap = cap;
    }
    spans->items[spans->len].start = start;
    spans->items[spans->len].end = end;
    spans->items[spans->len].is_value = is_value;
    spans->len++;
    return 0;
}

/* Record every value run and literal "<*>" in order; returns the total
 * length of the value runs, or -1 on error.  Inlined per kind, so each
 * PyUnicode_READ below is a plain array load. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline Py_ssize_t
scan(int kind, const void *data, Py_ssize_t n, Spans *spans)
{
    Py_ssize_t i = 0, total = 0;
    spans->len = 0;
    while (i < n) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (IS(ch, START)) {
            Py_ssize_t start = i++;
            while (i < n) {
                Py_UCS4 next = PyUnicode_READ(kind, data, i);
                if (!IS(next, CONT))
                    break;
                i++;
            }
            if (spans_push(spans, start, i, 1) < 0)
                return -1;
            total += i - start;
        }
        else if (ch == '<' && i + 2 < n && PyUnicode_READ(kind, data, i + 1) == '*' &&
                 PyUnicode_READ(kind, data, i + 2) == '>') {
            if (spans_push(spans, i, i + 3, 0) < 0)
                return -1;
            i += 3;
        }
        else {
            i++;
        }
    }
    return total;
}

/* Masker().mask(message) for one message whose spans are already scanned:
 * stores the new references in *shape and *values; returns -1 on error. */
static int
mask_one(PyObject *message, const Spans *spans, Py_ssize_t value_chars, PyObject **shape,
         PyObject **values)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(message), nvalues = 0, k;
    int kind = PyUnicode_KIND(message);
    const char *src = PyUnicode_DATA(message);
    char *dst;
    Py_ssize_t i = 0, j = 0;
    PyObject *out, *tuple;

    for (k = 0; k < spans->len; k++)
        nvalues += spans->items[k].is_value;
    /* Values are ASCII, so the shape keeps every non-ASCII character of the
     * message: the input's max char gives the canonical kind. */
    out = PyUnicode_New(n - value_chars + 3 * nvalues, PyUnicode_MAX_CHAR_VALUE(message));
    if (out == NULL)
        return -1;
    tuple = PyTuple_New(nvalues);
    if (tuple == NULL) {
        Py_DECREF(out);
        return -1;
    }
    dst = PyUnicode_DATA(out);
    nvalues = 0;
    for (k = 0; k < spans->len; k++) {
        const Span *span = &spans->items[k];
        /* Same kind in and out: constant text is copied as raw bytes. */
        memcpy(dst + j * kind, src + i * kind, (size_t)((span->start - i) * kind));
        j += span->start - i;
        PyUnicode_WRITE(kind, dst, j, '<');
        PyUnicode_WRITE(kind, dst, j + 1, span->is_value ? '*' : '?');
        PyUnicode_WRITE(kind, dst, j + 2, '>');
        j += 3;
        i = span->end;
        if (span->is_value) {
            PyObject *value = PyUnicode_Substring(message, span->start, span->end);
            if (value == NULL) {
                Py_DECREF(out);
                Py_DECREF(tuple);
                return -1;
            }
            PyTuple_SET_ITEM(tuple, nvalues++, value);
        }
    }
    memcpy(dst + j * kind, src + i * kind, (size_t)((n - i) * kind));
    *shape = out;
    *values = tuple;
    return 0;
}

/* A new list holding the argument's items.  Allocations below can start a
 * garbage collection whose finalizers run Python code; with a copy that no
 * other code can see, the items stay alive and in place meanwhile. */
static PyObject *
private_copy(PyObject *list, const char *func)
{
    if (!PyList_Check(list)) {
        PyErr_Format(PyExc_TypeError, "%s() expects a list, not %.100s", func,
                     Py_TYPE(list)->tp_name);
        return NULL;
    }
    return PyList_GetSlice(list, 0, PyList_GET_SIZE(list));
}

/* 0 when `item` is a ready str; -1 with a TypeError naming `func` otherwise. */
static int
check_str(PyObject *item, const char *func)
{
    if (!PyUnicode_Check(item)) {
        PyErr_Format(PyExc_TypeError, "%s() expects str items, not %.100s", func,
                     Py_TYPE(item)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(item) < 0)
        return -1;
#endif
    return 0;
}

static PyObject *
mask_many(PyObject *module, PyObject *messages)
{
    Py_ssize_t count, m;
    PyObject *items, *shapes = NULL, *all_values = NULL, *empty = NULL, *result = NULL;
    Spans spans = {NULL, 0, 0};

    items = private_copy(messages, "mask_many");
    if (items == NULL)
        return NULL;
    count = PyList_GET_SIZE(items);
    shapes = PyList_New(count);
    all_values = PyList_New(count);
    empty = PyTuple_New(0);
    if (shapes == NULL || all_values == NULL || empty == NULL)
        goto done;
    for (m = 0; m < count; m++) {
        PyObject *message = PyList_GET_ITEM(items, m), *shape, *values;
        Py_ssize_t value_chars;
        int kind;
        if (check_str(message, "mask_many") < 0)
            goto done;
        kind = PyUnicode_KIND(message);
        switch (kind) {
        case PyUnicode_1BYTE_KIND:
            value_chars = scan(PyUnicode_1BYTE_KIND, PyUnicode_DATA(message),
                               PyUnicode_GET_LENGTH(message), &spans);
            break;
        case PyUnicode_2BYTE_KIND:
            value_chars = scan(PyUnicode_2BYTE_KIND, PyUnicode_DATA(message),
                               PyUnicode_GET_LENGTH(message), &spans);
            break;
        default:
            value_chars = scan(PyUnicode_4BYTE_KIND, PyUnicode_DATA(message),
                               PyUnicode_GET_LENGTH(message), &spans);
            break;
        }
        if (value_chars < 0)
            goto done;
        if (spans.len == 0) {
            /* Nothing to mask: the message itself, as Masker.mask returns. */
            Py_INCREF(message);
            Py_INCREF(empty);
            shape = message;
            values = empty;
        }
        else if (mask_one(message, &spans, value_chars, &shape, &values) < 0) {
            goto done;
        }
        PyList_SET_ITEM(shapes, m, shape);
        PyList_SET_ITEM(all_values, m, values);
    }
    result = PyTuple_Pack(2, shapes, all_values);
done:
    PyMem_Free(spans.items);
    Py_DECREF(items);
    Py_XDECREF(shapes);
    Py_XDECREF(all_values);
    Py_XDECREF(empty);
    return result;
}

/* loglytics.speedups.number(text) as a float, NaN for None; NULL on error. */
static PyObject *
number_one(PyObject *text, PyObject *nan)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), end, i;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_UCS4 first;
    PyObject *stripped, *value;

    if (n == 0)
        goto not_a_number;
    first = PyUnicode_READ(kind, data, 0);
    if (!(Py_UNICODE_ISDIGIT(first) || ((first == '-' || first == '.') && n > 1)))
        goto not_a_number;
    /* text.rstrip("msMSkKbB%") */
    for (end = n; end > 0; end--) {
        switch (PyUnicode_READ(kind, data, end - 1)) {
        case 'm': case 's': case 'M': case 'S': case 'k': case 'K': case 'b': case 'B': case '%':
            continue;
        }
        break;
    }
    /* Only a shortcut: float() rejects any ASCII character outside
     * FLOATISH, and raising its ValueError costs more than the parse (dates
     * and times are common parameters).  The rest is left to float(). */
    for (i = 0; i < end; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch < 128 && !(CLASS[ch] & FLOATISH))
            goto not_a_number;
    }
    stripped = PyUnicode_Substring(text, 0, end);
    if (stripped == NULL)
        return NULL;
    value = PyFloat_FromString(stripped);
    Py_DECREF(stripped);
    if (value == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError))
            return NULL;
        PyErr_Clear();
        goto not_a_number;
    }
    if (isfinite(PyFloat_AS_DOUBLE(value)))
        return value;
    Py_DECREF(value);
not_a_number:
    Py_INCREF(nan);
    return nan;
}

static PyObject *
numbers(PyObject *module, PyObject *texts)
{
    Py_ssize_t count, t;
    PyObject *items, *result = NULL, *nan = NULL;

    items = private_copy(texts, "numbers");
    if (items == NULL)
        return NULL;
    count = PyList_GET_SIZE(items);
    result = PyList_New(count);
    nan = PyFloat_FromDouble(Py_NAN);
    if (result == NULL || nan == NULL)
        goto error;
    for (t = 0; t < count; t++) {
        PyObject *text = PyList_GET_ITEM(items, t), *value;
        if (check_str(text, "numbers") < 0)
            goto error;
        value = number_one(text, nan);
        if (value == NULL)
            goto error;
        PyList_SET_ITEM(result, t, value);
    }
    Py_DECREF(nan);
    Py_DECREF(items);
    return result;
error:
    Py_XDECREF(nan);
    Py_XDECREF(result);
    Py_DECREF(items);
    return NULL;
}

/* loglytics.speedups.fold: see its Python definition there. */
static PyObject *
fold(PyObject *module, PyObject *args)
{
    PyObject *rows, *stats, *items = NULL, *nan = NULL, *result = NULL;
    Py_ssize_t k, count, r;
    long long found = 0, prior = 0;
    double low = 0.0, high = 0.0, total = 0.0;

    if (!PyArg_ParseTuple(args, "OnO:fold", &rows, &k, &stats))
        return NULL;
    if (stats != Py_None && !(PyList_Check(stats) && PyList_GET_SIZE(stats) == 4)) {
        PyErr_SetString(PyExc_TypeError, "fold() expects stats None or [count, min, max, sum]");
        return NULL;
    }
    if (stats != Py_None) {
        prior = PyLong_AsLongLong(PyList_GET_ITEM(stats, 0));
        low = PyFloat_AsDouble(PyList_GET_ITEM(stats, 1));
        high = PyFloat_AsDouble(PyList_GET_ITEM(stats, 2));
        total = PyFloat_AsDouble(PyList_GET_ITEM(stats, 3));
        if (PyErr_Occurred())
            return NULL;
    }
    items = private_copy(rows, "fold");
    if (items == NULL)
        return NULL;
    nan = PyFloat_FromDouble(Py_NAN);
    if (nan == NULL)
        goto done;
    count = PyList_GET_SIZE(items);
    for (r = 0; r < count; r++) {
        PyObject *row = PyList_GET_ITEM(items, r), *text, *value;
        double v;
        if (!PyTuple_Check(row)) {
            PyErr_Format(PyExc_TypeError, "fold() expects tuple rows, not %.100s",
                         Py_TYPE(row)->tp_name);
            goto done;
        }
        if (k < 0 || PyTuple_GET_SIZE(row) <= k)
            continue;
        text = PyTuple_GET_ITEM(row, k);
        if (check_str(text, "fold") < 0)
            goto done;
        value = number_one(text, nan);
        if (value == NULL)
            goto done;
        v = PyFloat_AS_DOUBLE(value);
        Py_DECREF(value);
        if (isnan(v))
            continue;
        if (found == 0 && stats == Py_None) {
            low = high = total = v;  /* sum(found[1:], found[0]) */
        }
        else {
            if (v < low)
                low = v;
            if (v > high)
                high = v;
            total += v;
        }
        found++;
    }
    if (found == 0) {
        result = stats;
        Py_INCREF(result);
        goto done;
    }
    if (stats == Py_None) {
        result = Py_BuildValue("[Lddd]", found, low, high, total);
        goto done;
    }
    {
        PyObject *fields[4] = {PyLong_FromLongLong(prior + found), PyFloat_FromDouble(low),
                               PyFloat_FromDouble(high), PyFloat_FromDouble(total)};
        int i, failed = 0;
        for (i = 0; i < 4; i++)
            failed |= fields[i] == NULL;
        if (failed) {
            for (i = 0; i < 4; i++)
                Py_XDECREF(fields[i]);
            goto done;
        }
        for (i = 0; i < 4; i++)
            PyList_SetItem(stats, i, fields[i]);  /* steals the reference */
        result = stats;
        Py_INCREF(result);
    }
done:
    Py_XDECREF(nan);
    Py_XDECREF(items);
    return result;
}

static PyMethodDef methods[] = {
    {"mask_many", mask_many, METH_O,
     "mask_many(messages, /)\n--\n\n"
     "Masker().mask(m) for each message, as (shapes, values) lists."},
    {"fold", fold, METH_VARARGS,
     "fold(rows, k, stats, /)\n--\n\n"
     "Fold the numbers of column k of rows into stats [count, min, max, sum]."},
    {"numbers", numbers, METH_O,
     "numbers(texts, /)\n--\n\n"
     "loglytics.speedups.number(t) for each text, NaN where it gives None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "loglytics._speedups",
    "Batch masking and number parsing for the ingest hot path (see loglytics.speedups).",
    0,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    init_classes();
    return PyModuleDef_Init(&module_def);
}
