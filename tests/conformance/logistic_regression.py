"""Binary classification by logistic regression, as in countless introductions: a Linear layer,
BCEWithLogitsLoss (and BCELoss on torch.sigmoid outputs for comparison), SGD, and accuracy from
thresholding the probabilities at 0.5; a tensor-valued print of the learned weights.
"""

import numpy as np
import torch
import torch.nn as nn

rng = np.random.default_rng(17)
n = 200
X_numpy = np.concatenate([rng.normal(-1, 1, (n // 2, 2)), rng.normal(1.5, 1, (n // 2, 2))])
y_numpy = np.concatenate([np.zeros(n // 2), np.ones(n // 2)])
X = torch.from_numpy(X_numpy.astype(np.float32))
y = torch.from_numpy(y_numpy.astype(np.float32)).view(-1, 1)


class LogisticRegression(nn.Module):
    def __init__(self, n_input_features):
        super().__init__()
        self.linear = nn.Linear(n_input_features, 1)

    def forward(self, x):
        return self.linear(x)  # logits; the loss applies the sigmoid


model = LogisticRegression(2)
with torch.no_grad():
    model.linear.weight.copy_(torch.tensor([[0.3, -0.2]]))
    model.linear.bias.fill_(0.1)

criterion = nn.BCEWithLogitsLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
losses = []
num_epochs = 100
for epoch in range(num_epochs):
    y_predicted = model(X)
    loss = criterion(y_predicted, y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    losses.append(loss.item())
    if (epoch + 1) % 25 == 0:
        print(f"epoch: {epoch + 1}, loss = {loss.item():.4f}")

with torch.no_grad():
    probabilities = torch.sigmoid(model(X))
    y_predicted_cls = probabilities.round()
    acc = y_predicted_cls.eq(y).sum() / float(y.shape[0])
    bce = nn.BCELoss()(probabilities, y).item()
    print(f"accuracy: {acc.item():.4f}, BCE on probabilities: {bce:.6f}")
    confident = (probabilities > 0.9) | (probabilities < 0.1)
    print(f"confident predictions: {confident.sum().item()} of {len(y)}")

w, b = model.linear.weight, model.linear.bias
print("weights:", w.detach(), "bias:", b.detach())
