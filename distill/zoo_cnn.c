/*
 * zoo_cnn.c - the zoo's MLP and convolutional networks, written with the zb_* helpers of
 * zoo.h: mlp, lenet5, a small VGG-style CNN, CIFAR-style ResNet-8/20, ImageNet-style
 * ResNet-18/50 and MobileNetV2. Each follows its paper's layout; `width` scales the channels
 * (the base width each model lists in il_zoo_build).
 *
 * Residual branches end in a BatchNormalization whose scale starts at 0 ("zero-init
 * residual", Goyal et al. 2017): every block starts as the identity, which makes the deeper
 * nets train from the first step with plain SGD.
 */
#include "zoo.h"

#include <stdio.h>
#include <string.h>

static int too_small(const char *model, int h, int w, int need) {
    if (h >= need && w >= need) return 0;
    il_error(IL_ERR_INVALID, "zoo %s: input %dx%d is too small (needs at least %dx%d)", model, h, w, need, need);
    return 1;
}

int zoo_mlp(zb *b, int x, int c, int h, int w, int width) {
    x = zb_node(b, "Flatten", "flatten", 1, &x);
    int d = c * h * w, w2 = width / 2 > 0 ? width / 2 : 1;
    x = zb_node(b, "Relu", "relu1", 1, (int[]){zb_gemm(b, "fc1", x, d, width, 1.4142135)});
    x = zb_node(b, "Relu", "relu2", 1, (int[]){zb_gemm(b, "fc2", x, width, w2, 1.4142135)});
    return zb_linear(b, "fc3", "logits", x, w2, b->k, 1.0);
}

int zoo_lenet5(zb *b, int x, int c, int h, int w, int width) {
    /* LeNet-5 widths 6-16-120-84, scaled by width/6; 28x28 inputs get padding 2 as in the
     * usual MNIST adaptation, so the first conv sees the 32x32 of the paper. */
    int c1 = width, c2 = (16 * width + 3) / 6, f1 = 120 * width / 6, f2 = 84 * width / 6;
    int pad = h < 32 ? 2 : 0;
    int h1 = (h + 2 * pad - 4) / 2, w1 = (w + 2 * pad - 4) / 2, h2 = (h1 - 4) / 2, w2 = (w1 - 4) / 2;
    if (h2 < 1 || w2 < 1) {
        il_error(IL_ERR_INVALID, "zoo lenet5: input %dx%d is too small (needs 12x12 or more)", h, w);
        return -1;
    }
    x = zb_node(b, "Relu", "relu1", 1, (int[]){zb_conv(b, "conv1", x, c, c1, 5, 1, pad, 1, 1)});
    x = zb_pool(b, "MaxPool", "pool1", x, 2, 2, 0);
    x = zb_node(b, "Relu", "relu2", 1, (int[]){zb_conv(b, "conv2", x, c1, c2, 5, 1, 0, 1, 1)});
    x = zb_pool(b, "MaxPool", "pool2", x, 2, 2, 0);
    x = zb_node(b, "Flatten", "flatten", 1, &x);
    x = zb_node(b, "Relu", "relu3", 1, (int[]){zb_gemm(b, "fc1", x, c2 * h2 * w2, f1, 1.4142135)});
    x = zb_node(b, "Relu", "relu4", 1, (int[]){zb_gemm(b, "fc2", x, f1, f2, 1.4142135)});
    return zb_linear(b, "fc3", "logits", x, f2, b->k, 1.0);
}

int zoo_vgg(zb *b, int x, int c, int h, int w, int width) {
    if (too_small("vgg", h, w, 8)) return -1;
    int cin = c;
    char nm[64];
    for (int s = 0; s < 3; s++) {
        int ch = width << s;
        for (int i = 0; i < 2; i++) {
            snprintf(nm, sizeof nm, "block%d.%d", s + 1, i + 1);
            x = zb_cba(b, nm, x, cin, ch, 3, 1, 1, "relu");
            cin = ch;
        }
        snprintf(nm, sizeof nm, "block%d.pool", s + 1);
        x = zb_pool(b, "MaxPool", nm, x, 2, 2, 0);
    }
    x = zb_gap_flat(b, "head", x);
    return zb_linear(b, "fc", "logits", x, cin, b->k, 1.0);
}

/* The end of a residual block: the shortcut (1x1 conv + BN when the shape changes), the add and
 * the ReLU named NAME.RELU; value names follow torchvision's module names. */
static int residual_join(zb *b, const char *name, int y, int x, int cin, int cout, int stride, const char *relu) {
    char nm[192];
    if (stride != 1 || cin != cout) {
        snprintf(nm, sizeof nm, "%s.downsample.0", name);
        x = zb_conv(b, nm, x, cin, cout, 1, stride, 0, 1, 0);
        snprintf(nm, sizeof nm, "%s.downsample.1", name);
        x = zb_bn(b, nm, x, cout, 1.0f);
    }
    snprintf(nm, sizeof nm, "%s.add", name);
    y = zb_add(b, nm, y, x);
    snprintf(nm, sizeof nm, "%s.%s", name, relu);
    return zb_act(b, nm, y, "relu");
}

/* The basic block of ResNet-18/20: two 3x3 convs, projection shortcut when the shape changes. */
static int basic_block(zb *b, const char *name, int x, int cin, int cout, int stride) {
    char nm[192];
    snprintf(nm, sizeof nm, "%s.conv1", name);
    int y = zb_conv(b, nm, x, cin, cout, 3, stride, 1, 1, 0);
    snprintf(nm, sizeof nm, "%s.bn1", name);
    y = zb_bn(b, nm, y, cout, 1.0f);
    snprintf(nm, sizeof nm, "%s.relu1", name);
    y = zb_act(b, nm, y, "relu");
    snprintf(nm, sizeof nm, "%s.conv2", name);
    y = zb_conv(b, nm, y, cout, cout, 3, 1, 1, 1, 0);
    snprintf(nm, sizeof nm, "%s.bn2", name);
    y = zb_bn(b, nm, y, cout, 0.0f);
    return residual_join(b, name, y, x, cin, cout, stride, "relu2");
}

/* The bottleneck of ResNet-50: 1x1 down, 3x3 (stride here, as torchvision's v1.5), 1x1 up x4. */
static int bottleneck(zb *b, const char *name, int x, int cin, int planes, int stride) {
    char nm[192];
    int cout = planes * 4;
    snprintf(nm, sizeof nm, "%s.1", name);
    int y = zb_cba(b, nm, x, cin, planes, 1, 1, 1, "relu");
    snprintf(nm, sizeof nm, "%s.2", name);
    y = zb_cba(b, nm, y, planes, planes, 3, stride, 1, "relu");
    snprintf(nm, sizeof nm, "%s.conv3", name);
    y = zb_conv(b, nm, y, planes, cout, 1, 1, 0, 1, 0);
    snprintf(nm, sizeof nm, "%s.bn3", name);
    y = zb_bn(b, nm, y, cout, 0.0f);
    return residual_join(b, name, y, x, cin, cout, stride, "relu");
}

int zoo_resnet_cifar(zb *b, int x, int c, int h, int w, int width, int depth) {
    /* He et al. 2016, section 4.2: 6n+2 layers, three stages of n blocks at widths 16-32-64. */
    int n = (depth - 2) / 6;
    if (too_small("resnet", h, w, 8)) return -1;
    x = zb_cba(b, "stem", x, c, width, 3, 1, 1, "relu");
    int cin = width;
    char nm[64];
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < n; i++) {
            snprintf(nm, sizeof nm, "layer%d.%d", s + 1, i);
            x = basic_block(b, nm, x, cin, width << s, s > 0 && i == 0 ? 2 : 1);
            cin = width << s;
        }
    x = zb_gap_flat(b, "head", x);
    return zb_linear(b, "fc", "logits", x, cin, b->k, 1.0);
}

int zoo_resnet_imagenet(zb *b, int x, int c, int h, int w, int width, int depth) {
    static const int blocks18[4] = {2, 2, 2, 2}, blocks50[4] = {3, 4, 6, 3};
    const int *nb = depth == 50 ? blocks50 : blocks18;
    if (too_small(depth == 50 ? "resnet50" : "resnet18", h, w, 16)) return -1;
    x = zb_conv(b, "conv1", x, c, width, 7, 2, 3, 1, 0);
    x = zb_bn(b, "bn1", x, width, 1.0f);
    x = zb_act(b, "relu", x, "relu");
    x = zb_pool(b, "MaxPool", "maxpool", x, 3, 2, 1);
    int cin = width;
    char nm[64];
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < nb[s]; i++) {
            int stride = s > 0 && i == 0 ? 2 : 1, planes = width << s;
            snprintf(nm, sizeof nm, "layer%d.%d", s + 1, i);
            if (depth == 50) {
                x = bottleneck(b, nm, x, cin, planes, stride);
                cin = planes * 4;
            } else {
                x = basic_block(b, nm, x, cin, planes, stride);
                cin = planes;
            }
        }
    x = zb_gap_flat(b, "head", x);
    return zb_linear(b, "fc", "logits", x, cin, b->k, 1.0);
}

/* Channels rounded to a multiple of 8, never below 90% of the request (the MobileNet rule). */
static int divisible8(double v) {
    int r = (int)(v + 4) / 8 * 8;
    if (r < 8) r = 8;
    if (r < 0.9 * v) r += 8;
    return r;
}

int zoo_mobilenet_v2(zb *b, int x, int c, int h, int w, int width) {
    /* Sandler et al. 2018, table 2: expansion t, channels c, repeats n, first stride s. */
    static const int cfg[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    double mult = width / 32.0;
    /* Small inputs (CIFAR, Fashion-MNIST) keep resolution longer: stem and first stage at
     * stride 1, the common CIFAR adaptation, so 28x28 ends at 4x4 rather than 1x1. */
    int small = h < 64 || w < 64;
    if (too_small("mobilenet_v2", h, w, 8)) return -1;
    int cin = divisible8(32 * mult);
    x = zb_cba(b, "features.0", x, c, cin, 3, small ? 1 : 2, 1, "relu6");
    char nm[64], nm2[160];
    int layer = 1;
    for (int s = 0; s < 7; s++) {
        int cout = divisible8(cfg[s][1] * mult);
        for (int i = 0; i < cfg[s][2]; i++, layer++) {
            int stride = i == 0 ? cfg[s][3] : 1, hidden = cin * cfg[s][0];
            if (small && s == 1) stride = 1;
            snprintf(nm, sizeof nm, "features.%d", layer);
            int y = x;
            if (cfg[s][0] != 1) {
                snprintf(nm2, sizeof nm2, "%s.expand", nm);
                y = zb_cba(b, nm2, y, cin, hidden, 1, 1, 1, "relu6");
            }
            snprintf(nm2, sizeof nm2, "%s.dw", nm);
            y = zb_cba(b, nm2, y, hidden, hidden, 3, stride, hidden, "relu6");
            snprintf(nm2, sizeof nm2, "%s.project", nm);
            y = zb_cba(b, nm2, y, hidden, cout, 1, 1, 1, "none");
            if (stride == 1 && cin == cout) {
                snprintf(nm2, sizeof nm2, "%s.add", nm);
                y = zb_add(b, nm2, y, x);
            }
            x = y;
            cin = cout;
        }
    }
    int last = mult > 1 ? divisible8(1280 * mult) : 1280;
    snprintf(nm, sizeof nm, "features.%d", layer);
    x = zb_cba(b, nm, x, cin, last, 1, 1, 1, "relu6");
    x = zb_gap_flat(b, "head", x);
    return zb_linear(b, "classifier", "logits", x, last, b->k, 1.0);
}
